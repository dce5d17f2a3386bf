package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/mftflow/mftflow/pipeline"
)

// Message is one notification: the JSON body a webhook receives, and what
// an e-mail tells in text. It is the engine's event with the rule's
// trigger and an id; fields that do not apply are left out.
type Message struct {
	// ID identifies the notification for its target: every attempt
	// carries the same, and so does the same event emitted again after a
	// crash. A receiver that keeps the ids it has seen drops repeats.
	// Webhooks get it in X-Mftflow-Delivery too, e-mails in Message-ID.
	ID string `json:"id"`
	// Trigger is what the rule was told of: passed, failed, mixed,
	// sla_warning, sla_missed or sla_met (pipeline.NotifyTriggers).
	// X-Mftflow-Event carries it too.
	Trigger string `json:"event"`
	pipeline.Event
}

// Bounds on the text a Message carries, so that it stays far below the
// bus's max_payload however long an error is.
const (
	maxText       = 4 << 10
	maxSinkError  = 1 << 10
	maxSinkResult = pipeline.MaxSinks
)

// triggerOf returns the trigger an event is, or "" when no rule can ask
// for it.
func triggerOf(ev pipeline.Event) string {
	switch ev.Kind {
	case pipeline.EventAcked:
		switch ev.Outcome {
		case pipeline.NotifyPassed, pipeline.NotifyFailed, pipeline.NotifyMixed:
			return ev.Outcome
		}
	case pipeline.EventSLAWarning, pipeline.EventSLAMissed, pipeline.EventSLAMet:
		return string(ev.Kind)
	}
	return ""
}

// newMessage is the notification of ev, which is trigger, for the target
// with id target.
func newMessage(ev pipeline.Event, trigger, target string) Message {
	ev.Error = truncate(ev.Error, maxText)
	ev.Detail = truncate(ev.Detail, maxText)
	if len(ev.Sinks) > 0 {
		sinks := make(map[string]pipeline.SinkResult, len(ev.Sinks))
		for _, name := range slices.Sorted(maps.Keys(ev.Sinks))[:min(len(ev.Sinks), maxSinkResult)] {
			r := ev.Sinks[name]
			r.Error = truncate(r.Error, maxSinkError)
			sinks[name] = r
		}
		ev.Sinks = sinks
	}
	return Message{ID: messageID(ev, trigger, target), Trigger: trigger, Event: ev.ForJSON()}
}

// messageID derives a notification's id from what identifies its event
// and its target, leaving out what differs when the same event is emitted
// again after a crash (its time, the runner). The stream drops a message
// whose id it has seen within its duplicate window, so a re-emitted event
// is sent once, and two rules with the same target share one message.
func messageID(ev pipeline.Event, trigger, target string) string {
	h := sha256.New()
	for _, s := range []string{target, trigger, string(ev.Kind), ev.Flow, ev.FileID, ev.Name, ev.Outcome, ev.Sink, slaDetail(ev)} {
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// slaDetail is the Detail of an SLA event, which names the expectation;
// a file's outcome is identified without it.
func slaDetail(ev pipeline.Event) string {
	if ev.Kind == pipeline.EventAcked {
		return ""
	}
	return ev.Detail
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

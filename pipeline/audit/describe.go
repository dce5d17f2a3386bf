package audit

import (
	"fmt"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
)

// Describe says in a line what an event holds beyond its kind, for people:
// "sink partner, attempt 2, opening ...: connection refused (runner r1)".
func Describe(ev pipeline.Event) string {
	var parts []string
	add := func(format string, v ...any) { parts = append(parts, fmt.Sprintf(format, v...)) }
	if ev.Sink != "" {
		add("sink %s", ev.Sink)
	}
	if ev.Attempt > 0 {
		add("attempt %d", ev.Attempt)
	}
	switch ev.Kind {
	case pipeline.EventDiscovered:
		add("%s", pipeline.FormatSize(ev.Size))
	case pipeline.EventRead:
		add("%s, sha256 %s", pipeline.FormatSize(ev.Size), ev.SHA256)
	case pipeline.EventRenamed:
		add("from %q", ev.Detail)
	case pipeline.EventPartRetry:
		add("part %d", ev.Part)
	case pipeline.EventCommitted:
		if ev.Location != "" {
			add("at %s", ev.Location)
		}
	case pipeline.EventAcked:
		add("%s", ev.Outcome)
	case pipeline.EventReplay:
		add("asked by %s", ev.By)
	}
	if ev.Error != "" {
		if ev.Permanent {
			add("failed for good: %s", ev.Error)
		} else {
			add("%s", ev.Error)
		}
	}
	if ev.Detail != "" && ev.Kind != pipeline.EventRenamed {
		add("%s", ev.Detail)
	}
	if ev.Runner != "" {
		add("(runner %s)", ev.Runner)
	}
	return strings.Join(parts, ", ")
}

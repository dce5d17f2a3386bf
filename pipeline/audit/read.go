package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// Stored is a record as the stream holds it.
type Stored struct {
	Record
	Seq  uint64 // stream sequence
	Hash string // hex sha256 of the stored bytes
	// Err is set for a message that is not a record; Record is then zero.
	Err error
}

// Walk calls fn with the flow's records in order, from the first one
// stored at or after since (zero: from the first), until fn returns false.
func Walk(ctx context.Context, js jetstream.JetStream, flow string, since time.Time, fn func(Stored) bool) error {
	n := bus.Names{Flow: flow}
	st, err := js.Stream(ctx, n.AuditStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("flow %s has no audit trail: is the flow's name right, and does it run with its audit on?", flow)
	} else if err != nil {
		return fmt.Errorf("reading the audit stream %s: %w", n.AuditStream(), err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !since.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	c, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	for {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return err
			}
			s := Stored{Seq: meta.Sequence.Stream, Hash: hashOf(msg.Data())}
			if err := json.Unmarshal(msg.Data(), &s.Record); err != nil {
				s.Err = fmt.Errorf("not an audit record: %v", err)
			}
			if !fn(s) || s.Seq >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == 0 {
			// Nothing came: the end is read when nothing is pending (the
			// records up to last may have been removed).
			ci, err := c.Info(ctx)
			if err != nil || ci.NumPending == 0 {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// Report is what Verify found.
type Report struct {
	Records uint64 // records read
	// First is the index of the first record stored; above 1 when the
	// ones before it aged out (or were removed from the head).
	First uint64
	// Head is the last record's index and hash.
	Head     uint64
	HeadHash string
	// Broken describes the first broken link, "" when the chain holds.
	Broken string
}

// Verify walks flow's audit trail and reports the first record that was
// removed, changed or moved.
func Verify(ctx context.Context, js jetstream.JetStream, flow string) (Report, error) {
	var rep Report
	var prev *Stored
	err := Walk(ctx, js, flow, time.Time{}, func(s Stored) bool {
		rep.Records++
		if why := brokenLink(prev, s); why != "" {
			rep.Broken = why
			return false
		}
		if prev == nil {
			rep.First = s.Index
		}
		rep.Head, rep.HeadHash = s.Index, s.Hash
		prev = &s
		return true
	})
	return rep, err
}

// brokenLink says why s does not follow prev in a sound chain; "" if it does.
func brokenLink(prev *Stored, s Stored) string {
	at := fmt.Sprintf("stream sequence %d", s.Seq)
	switch {
	case s.Err != nil:
		return fmt.Sprintf("%s: %v (a message written by something else than a runner)", at, s.Err)
	case prev == nil && s.Index == 1 && s.Prev != "":
		return fmt.Sprintf("record 1 at %s names a record before it: it is not the first record", at)
	case prev == nil:
		return ""
	case s.Index <= prev.Index:
		return fmt.Sprintf("record %d at %s comes after record %d: records were moved or written again", s.Index, at, prev.Index)
	case s.Index != prev.Index+1:
		return fmt.Sprintf("record %d at %s follows record %d (at stream sequence %d): records %d to %d are missing", s.Index, at, prev.Index, prev.Seq, prev.Index+1, s.Index-1)
	case s.Prev != prev.Hash:
		return fmt.Sprintf("record %d at %s does not hold the hash of record %d before it: record %d (stream sequence %d) was changed, or record %d replaced", s.Index, at, prev.Index, prev.Index, prev.Seq, s.Index)
	}
	return ""
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// The accepted BusSpec.Payload values.
const (
	// PayloadBytes puts every byte of a file on the bus: the sinks read the
	// bus, never the source again. It works with every source and stage.
	PayloadBytes = "bytes"
	// PayloadReference puts on the bus, per chunk, where its bytes are in
	// the source file and their CRC-32C; deliveries read the bytes from the
	// source. The source must be able to read a file again (Rereader) and no
	// stage may change the content.
	PayloadReference = "reference"
	// PayloadAuto is reference when the source and every stage allow it, and
	// bytes otherwise.
	PayloadAuto = "auto"
)

// Payloads lists the accepted BusSpec.Payload values.
var Payloads = []string{PayloadBytes, PayloadReference, PayloadAuto}

// The accepted BusSpec.OnChange values: what happens to a file read by
// reference whose source changed before every sink had it.
const (
	// ChangeFail fails the file, naming it and saying it changed during the
	// transfer; the source keeps it.
	ChangeFail = "fail"
	// ChangeReread reads the file again as it is now, as a new version, and
	// delivers that version to the sinks that had not committed the old one.
	ChangeReread = "reread"
)

// Changes lists the accepted BusSpec.OnChange values.
var Changes = []string{ChangeFail, ChangeReread}

// ErrChanged is wrapped by errors reporting that a file changed at its source
// since it was read: its size, time or version tag differs, or its bytes no
// longer match the checksums taken when it was read.
var ErrChanged = errors.New("the file changed at its source")

// Rereader is an optional Source ability: reading a file again, by the Key it
// was offered with, on any runner of the flow. It lets the bus carry where a
// file's bytes are instead of the bytes (bus.payload: reference).
type Rereader interface {
	// Reopen returns range reads of the file offered with key, as it was
	// then. A read of a file that changed since fails with an error wrapping
	// ErrChanged (checked when each range is opened: size and time, or the
	// version tag; the engine checks every chunk's CRC-32C as well).
	Reopen(ctx context.Context, key string) (RangeOpener, error)
	// Reoffer returns the file offered with key as it is now at the source,
	// for reading afresh: another version (another Key) when it changed. It
	// returns an error wrapping fs.ErrNotExist when the file is gone.
	Reoffer(ctx context.Context, key string) (Item, error)
	// RereadsAnywhere reports whether Reopen works on every host, as an
	// object store does, or only on this one, as a local path does unless
	// the flow declares it shared by every runner's host.
	RereadsAnywhere() bool
}

// ContentKeeper is an optional Stage ability: a stage whose KeepsContent
// returns true changes a file's name or attributes, or drops it, but never
// its bytes, and decides without reading them: a file read by reference is
// passed through it with a reader that yields nothing.
type ContentKeeper interface {
	KeepsContent() bool
}

// Rereads describes what a flow's components allow for reading files by
// reference.
type Rereads struct {
	// Source names the source when it cannot read a file again; "" when it
	// can.
	Source string
	// Why says why the source cannot (hands files out once, has no range
	// reads by key).
	Why string
	// HereOnly is set when the source reads again only on this host.
	HereOnly bool
	// Stage names the first stage that changes or reads the content; "" when
	// none does.
	Stage string
	// SharedBus is set when runners on other hosts may deliver the flow's
	// files (the runner uses an external NATS server).
	SharedBus bool
}

// PayloadFor returns how b's files travel given what the flow's components
// allow: PayloadBytes or PayloadReference. Reference asked for and not
// possible is an error saying why and what to do; auto falls back to bytes.
func (b BusSpec) PayloadFor(can Rereads) (string, error) {
	if b.Payload == "" || b.Payload == PayloadBytes {
		return PayloadBytes, nil
	}
	why := can.refusal()
	switch {
	case why == "":
		return PayloadReference, nil
	case b.Payload == PayloadAuto:
		return PayloadBytes, nil
	}
	return "", fmt.Errorf("bus.payload reference: %s; use bus.payload bytes, or auto to read by reference only where it can", why)
}

func (can Rereads) refusal() string {
	switch {
	case can.Source != "":
		return fmt.Sprintf("source %q %s", can.Source, can.Why)
	case can.Stage != "":
		return fmt.Sprintf("stage %s changes or reads the content, so the bytes a sink needs exist only after it: remove the stage", can.Stage)
	case can.HereOnly && can.SharedBus:
		return "the source reads files again only on this host, and runners on other hosts may deliver them (the bus is an external NATS server): set shared: true on the source if every runner sees the same files at the same path"
	}
	return ""
}

// CheckPayload refuses a flow that asks for bus.payload reference where its
// components, as their specs describe them, do not allow it. The error has
// no position: it belongs to the flow's bus.payload setting. Whether other
// runners share the bus is not known here; the engine checks that when the
// flow starts.
func (r *Registry) CheckPayload(f Flow) error {
	if f.Bus.Payload != PayloadReference {
		return nil
	}
	var can Rereads
	if c := f.Source; c.Instance == nil && c.Type != "" {
		spec, ok := r.Lookup(KindSource, c.Type)
		cfg, err := ParseConfig(spec, c.Config)
		switch {
		case !ok || err != nil:
			return nil // reported elsewhere
		case spec.Rereads == nil && spec.HandsOutOnce():
			can.Source, can.Why = c.Type, "hands each file out once: a file taken from it cannot be read again"
		case spec.Rereads == nil:
			can.Source, can.Why = c.Type, "cannot read a file again by its key"
		default:
			can.HereOnly = !spec.Rereads(cfg)
		}
	}
	for i, c := range f.Stages {
		if c.Instance != nil || c.Type == "" {
			continue
		}
		if spec, ok := r.Lookup(KindStage, c.Type); ok && !spec.KeepsContent {
			can.Stage = fmt.Sprintf("%d (%s)", i+1, c.Type)
			break
		}
	}
	_, err := f.Bus.PayloadFor(can)
	return err
}

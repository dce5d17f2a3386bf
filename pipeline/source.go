package pipeline

import (
	"context"
	"io"
)

// Source yields the files of a flow.
type Source interface {
	// Next blocks until a file is ready and returns it. It returns io.EOF when a
	// finite source has nothing more to offer, and ctx.Err() when ctx ends.
	// Next is called from one goroutine at a time. A file that was returned but
	// never acked (the runner stopped) must be offered again by a new Source.
	Next(ctx context.Context) (Item, error)
	// Close releases the source's resources. Items already returned remain
	// valid for Ack until Close returns.
	Close() error
}

// Item is one file offered by a Source.
type Item interface {
	// File returns the file's metadata. Name and Key must be set.
	File() File
	// Open returns the file's content from the start. It may be called more
	// than once (a resumed read opens the file again).
	Open(ctx context.Context) (io.ReadCloser, error)
	// Ack is called once every sink is done with the file, with the outcome.
	// It may be called again for the same file after a restart, so it must be
	// idempotent. Sources apply after-delivery actions (delete, move) only for
	// Passed.
	Ack(ctx context.Context, o Outcome) error
}

// AckRemover is an optional Item ability: AckRemoves reports whether Ack
// with status s takes the file away from the source (deletes or moves it, or
// drops the source's only copy), so that after it the sinks' copies are the
// only ones. The engine then makes those copies durable before it calls Ack
// (see Flusher). It must not block and must give the same answer for the
// same s every time. An Item without this ability is taken to leave the file
// where it is.
type AckRemover interface {
	AckRemoves(s Status) bool
}

// RangeOpener is an optional Item ability: reading a byte range, which lets
// the engine read several chunks of one file at once and resume a read in the
// middle. OpenRange must be safe for concurrent use.
type RangeOpener interface {
	OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error)
}

// AttrChecker is an optional Item ability: CheckAttrs checks the file as
// the stages left it (its attributes, mostly) for values the item's Ack
// will act on, such as the Thru source's batch counts, before any sink
// gets the file. An error fails the file before delivery, for good, with
// the error's text as its message: say which attribute, what is wrong with
// it and what to do. It must not block.
type AttrChecker interface {
	CheckAttrs(f File) error
}

// HandsOutOnce reports whether a source connector hands each file out only
// once, like a queue (the Thru pickup): once taken, the file cannot be read
// from the source again, so until the sinks commit it the bus holds the only
// copy. Such a source says so (Queue); sources that list a place they can
// list again (local, S3, SFTP) have a "watch" field, and a source spec with
// neither is taken to hand files out once, which errs on the safe side for a
// plugin.
func (s Spec) HandsOutOnce() bool {
	_, watches := s.Field("watch")
	return s.Kind == KindSource && (s.Queue || !watches)
}

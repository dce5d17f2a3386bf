package pipeline

import (
	"context"
	"io"
	"time"
)

// Sink receives files.
type Sink interface {
	// Open starts (or, with resume state from an earlier Upload.State, resumes)
	// writing one file. f.Size and f.SHA256 may be unknown (-1, "") while the
	// engine is still reading the file unless the sink implements ManifestFirst.
	// Open may return an error wrapping ErrSkip to skip the file for this sink
	// (for example an overwrite policy of "skip"); that counts as delivered.
	Open(ctx context.Context, f File, resume []byte) (Upload, error)
	// Close releases the sink's resources after every Upload is finished.
	Close() error
}

// PartPlan is how a sink wants a file cut into parts.
type PartPlan struct {
	// PartSize is the preferred part size in bytes. The engine rounds it up to
	// a whole number of bus chunks; 0 means one bus chunk per part.
	PartSize int64
	// Concurrency is how many WritePart calls may run at once; 0 means the
	// flow's default for the sink.
	Concurrency int
	// InOrder asks for the parts one at a time, in order of Number, for a
	// sink that can only append (an FTP upload). A resumed upload then
	// continues from some part at or before the first one not written,
	// and every part after it follows in order: a part is never written
	// while a later one is there unless the later ones are written again.
	InOrder bool
}

// Part locates one part of a file. Every part but the last is exactly the
// plan's part size (after rounding), so Offset is Number × part size. A
// 0-byte file is written as one empty part {Number: 0, Size: 0, Last: true};
// no other file has an empty part.
type Part struct {
	Number int // 0-based
	Offset int64
	Size   int64
	Last   bool
}

// Upload is one file being written to a sink.
type Upload interface {
	// Plan returns the part plan. It is called once, right after Open.
	Plan() PartPlan
	// WritePart writes one part. It is safe for concurrent use with other parts
	// and idempotent: writing a part again replaces it. r yields exactly p.Size
	// bytes.
	WritePart(ctx context.Context, p Part, r io.Reader) error
	// Commit makes the file visible once every part is written. f carries the
	// final Size and SHA256. After a successful Commit, State and WritePart are
	// no longer called.
	//
	// Commit may be called again for the same file by a new Upload opened
	// with the same resume state, when a runner died between committing and
	// recording the commit: it must then succeed without making a second
	// copy (for example: the temp file is gone but the target is there with
	// the right size). Commit may return an error wrapping ErrSkip (the
	// overwrite policy declined the file after all) or ErrExists.
	Commit(ctx context.Context, f File) error
	// Abort discards what was written. cause says why (nil: cancelled). It is
	// called at most once, only after the delivery is recorded as failed.
	Abort(ctx context.Context, cause error) error
	// State returns an opaque token from which Sink.Open can resume this upload
	// after a crash (a temp file name, an upload id). The engine stores it after
	// parts complete. Safe for concurrent use with WritePart.
	State() []byte
}

// ManifestFirst is an optional Sink ability, asked for each file before Open:
// a sink that needs facts it does not have yet (f.Size is -1 when a stage
// changed the content; f.SHA256 is always "" at this point) returns true,
// and the engine opens it only once the whole file is on the bus, with the
// final Size and SHA256. That file is then kept whole on the bus until this
// sink has it, so return true only when needed: a sink that announces the
// size first, say, needs it only when f.Size is -1.
type ManifestFirst interface {
	ManifestFirst(f File) bool
}

// WholeWriter is an optional Sink ability: writing a small file handed over
// whole in one request (an object store's single PUT) instead of Open,
// WritePart and Commit, which cost a sink such as S3 three or more. The
// engine uses it for the files of a group, whose bytes it holds and which
// no attempt resumes, at the point where it would call Commit (after
// claiming the commit, so that an owner that lost its delivery writes
// nothing). It returns ErrSkip or ErrExists as Open or Commit would under
// the sink's overwrite policy; like Commit, it may be called again for a
// file it wrote.
type WholeWriter interface {
	WriteWhole(ctx context.Context, f File, data []byte) error
}

// Reclaimer is an optional Sink ability, for sinks where an Open leaves
// something behind until it is committed or aborted (an S3 multipart
// upload, which the bucket keeps and bills). An attempt that dies between
// Open and the record of its Upload.State leaves it unknown to the next
// attempt, which opens anew: before that, the engine calls Reclaim with the
// file and the time the delivery's first attempt began, and the sink
// removes what it holds for f begun since then. It must not touch what
// began before since; a failure is logged, not fatal.
type Reclaimer interface {
	Reclaim(ctx context.Context, f File, since time.Time) error
}

// Flusher is an optional Sink ability, for sinks whose Commit can return
// before the file is on stable storage (a local file system without a sync
// per file). Flush blocks until every file this sink committed before the
// call is on stable storage: its content, its name and the directories
// leading to it survive a power cut. Where it can, it covers files committed
// by an earlier process too (a file-system-wide sync does): a runner that
// restarts may find a file committed by the run before and remove it from
// its source after flushing. ctx bounds the wait, not necessarily the work
// already started. Flush is safe for concurrent use; calls may be coalesced,
// so that one sync serves every caller that asked before it started. An
// error means the files may not be durable.
//
// The engine calls Flush before an Ack that removes the file from its source
// (AckRemover). A sink whose Commit returns only once the file is durable
// (an object store's acknowledgement, a local sink that syncs every file)
// needs no Flush, or returns nil at once.
type Flusher interface {
	Flush(ctx context.Context) error
}

package testkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// Timing of the suites. Variables so this package's own tests can shorten them.
var (
	// subtestTimeout bounds one subtest, so a hanging connector fails instead
	// of stalling the whole test binary.
	subtestTimeout = 60 * time.Second
	// promptly is how long a call may take to return after its context ended
	// or its source was closed.
	promptly = 3 * time.Second
	// quietWait is how long the source suite waits for a file it does not
	// expect, after every expected file was offered.
	quietWait = 300 * time.Millisecond
	// reofferWait is how long a reopened endless source has to offer again
	// the files it should.
	reofferWait = 10 * time.Second
)

// skipError is returned by a check whose ability the connector lacks.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

func skipf(format string, args ...any) error {
	return &skipError{fmt.Sprintf(format, args...)}
}

// check is one subtest of a suite. It returns an error instead of failing t,
// so the suites themselves can be tested against broken connectors; t is
// passed on to the harness.
type check[H any] struct {
	name string
	run  func(ctx context.Context, t *testing.T, h H) error
}

func runChecks[H any](t *testing.T, h H, checks []check[H]) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), subtestTimeout)
			defer cancel()
			err := c.run(ctx, t, h)
			var skip *skipError
			if errors.As(err, &skip) {
				t.Skip(skip.reason)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	// A failed check may leave a hung call behind; its error says enough.
	if !t.Failed() {
		goleak.VerifyNone(t, append(lingering(), before)...)
	}
}

// lingering lists goroutines that may outlive a suite without a connector
// having leaked them.
func lingering() []goleak.Option {
	return []goleak.Option{
		// Idle keep-alive connections of an HTTP client (an S3 client's)
		// wait for the server until their idle timeout.
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	}
}

// RandomContent returns n pseudo-random bytes, the same for the same seed.
// Random content defeats compression, so it exercises the full data path.
func RandomContent(seed int64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(seed))
	b := make([]byte, n)
	rng := rand.NewChaCha8(key)
	_, _ = rng.Read(b) // never fails
	return b
}

// SHA256Hex returns the hex sha256 of b, in the form File.SHA256 uses.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ReadRange reads n bytes at off through ro, failing t on any error.
func ReadRange(t testing.TB, ro pipeline.RangeOpener, off, n int64) string {
	t.Helper()
	rc, err := ro.OpenRange(context.Background(), off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer discard.Close(rc)
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compareContent describes how got differs from want, or returns nil.
func compareContent(what string, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	at := 0
	for at < len(got) && at < len(want) && got[at] == want[at] {
		at++
	}
	return fmt.Errorf("%s: got %d bytes (sha256 %.16s…), want %d bytes (sha256 %.16s…); first difference at offset %d",
		what, len(got), SHA256Hex(got), len(want), SHA256Hex(want), at)
}

// plainReader hides everything but Read, as a reader of bus chunks would:
// no Seek, no WriteTo, no Len for a sink to lean on.
func plainReader(b []byte) io.Reader {
	return struct{ io.Reader }{bytes.NewReader(b)}
}

// isCtxErr reports whether err is a context's error.
func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

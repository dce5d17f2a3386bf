package thru_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// What "delivered once" means when the site does a call's work and its
// answer is lost, per call:
//
//   - drop-off chunk zero and content chunks: the site keeps the last copy
//     of each, so the client sends a chunk again and the file holds it once;
//   - drop-off EOF and session Commit: a repeated one answers 200 without a
//     second file, so the client sends it again and the file arrives once;
//   - session chunk PUT: as a drop-off chunk, the site keeps the last copy;
//   - simple upload: every upload the site takes is a file, and nothing can
//     ask whether the lost one arrived, so it is not sent again: the site
//     holds it once and the sink fails it, saying so
//     (TestLostAnswerSimpleUploadNotSentAgain).
func TestLostAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, mode, kind string
		n                int
	}{
		{"dropoff chunk zero", thru.ModeDropOff, thrusim.KindChunkZero, 1},
		{"dropoff chunk", thru.ModeDropOff, thrusim.KindChunk, 2},
		{"dropoff EOF", thru.ModeDropOff, thrusim.KindEOF, 1},
		{"session chunk", thru.ModeContent, thrusim.KindSessionPut, 2},
		{"session commit", thru.ModeContent, thrusim.KindSessionCommit, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := newSite(t, nil)
			site.LoseAnswerNth(tc.kind, tc.n)
			s := newSink(t, site, func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold = tc.mode, -1 })
			content := testkit.RandomContent(31, 5*(64<<10)+77)
			deliver(t, s, file("lost/answer.bin", content), content)
			lost := 0
			for _, c := range site.CallsOf(tc.kind) {
				if c.Status == 0 {
					lost++
				}
			}
			if lost != 1 {
				t.Fatalf("%d %s calls lost their answer, want 1: the fault did not fire", lost, tc.kind)
			}
			checkDeliveredOnce(t, site, content)
		})
	}
}

// checkDeliveredOnce checks that the site holds exactly one file, with
// content's bytes.
func checkDeliveredOnce(t *testing.T, site *thrusim.Server, content []byte) {
	t.Helper()
	d := site.Deliveries()
	if len(d) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(d), d)
	}
	if got, want := siteSHA256(t, d[0]), testkit.SHA256Hex(content); got != want || d[0].Size != int64(len(content)) {
		t.Fatalf("the site holds %d bytes with sha256 %s, want %d bytes with %s", d[0].Size, got, len(content), want)
	}
}

func TestLostAnswerSimpleUploadNotSentAgain(t *testing.T) {
	site := newSite(t, nil)
	site.LoseAnswerNth(thrusim.KindSimpleUpload, 1)
	s := newSink(t, site, func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold = thru.ModeContent, thru.AdvisedSimpleThreshold })
	content := testkit.RandomContent(32, 100_000)
	f := file("once.bin", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.Part{Number: 0, Size: int64(len(content)), Last: true}
	err = u.WritePart(t.Context(), p, strings.NewReader(string(content)))
	if !errors.Is(err, thru.ErrAnswerLost) || !pipeline.IsPermanent(err) {
		t.Fatalf("err = %v; want a permanent ErrAnswerLost", err)
	}
	// The network's words in the middle vary (EOF, connection reset).
	prefix := `thru: Content simple upload for file "once.bin" on endpoint ` + endpoint + `: no answer after the whole request was sent (`
	suffix := `); the site may hold the file, and the Content API cannot be asked whether it does, so it is not sent again ` +
		`(that could deliver it twice): look for it at the endpoint and replay it to this sink only if it is not there; ` +
		`simple_threshold: 0 sends every file in an upload session, which recovers from a lost answer by itself`
	if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, suffix) {
		t.Fatalf("err = %q\nwant %q...%q", msg, prefix, suffix)
	}
	if n := len(site.CallsOf(thrusim.KindSimpleUpload)); n != 1 {
		t.Fatalf("%d simple uploads, want 1: an upload whose answer was lost was sent again", n)
	}
	checkDeliveredOnce(t, site, content)

}

// siteSHA256 hashes the bytes the site holds for d, afresh.
func siteSHA256(t *testing.T, d thrusim.Delivery) string {
	t.Helper()
	r, err := d.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

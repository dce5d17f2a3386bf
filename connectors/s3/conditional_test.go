package s3

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

// barrier holds the first n requests that match until all n have arrived,
// then lets them go together.
type barrier struct {
	match   func(*http.Request) bool
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func newBarrier(n int, match func(*http.Request) bool) *barrier {
	return &barrier{match: match, n: n, all: make(chan struct{})}
}

func (b *barrier) client() *http.Client {
	return &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if b.match(r) {
			b.mu.Lock()
			b.arrived++
			if b.arrived == b.n {
				close(b.all)
			}
			b.mu.Unlock()
			select {
			case <-b.all:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

// isComplete matches CompleteMultipartUpload: POST with uploadId.
func isComplete(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}

// isPutObject matches PutObject: PUT of a whole object, not a part or a copy.
func isPutObject(r *http.Request) bool {
	q := r.URL.Query()
	return r.Method == http.MethodPut && !q.Has("uploadId") && !q.Has("tagging") && r.Header.Get("X-Amz-Copy-Source") == ""
}

// TestOverwriteFailRace delivers two files to the same key at once with
// overwrite fail. Both find the key free at Open and at Commit; the requests
// that create the object (CompleteMultipartUpload, or PutObject for an empty
// file) are held until both are sent, so only the server's conditional write
// (If-None-Match: *) can keep the second from replacing the first. Exactly
// one delivery succeeds, the other fails with pipeline.ErrExists, and the
// object is the winner's, with no upload left behind.
func TestOverwriteFailRace(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, tc := range []struct {
		name  string
		size  int
		match func(*http.Request) bool
	}{
		{"multipart", 2*MinPartSize + 1, isComplete},
		{"empty", 0, isPutObject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := srv.NewBucket(t)
			hold := newBarrier(2, tc.match)
			contents := [2][]byte{testkit.RandomContent(41, tc.size), testkit.RandomContent(42, tc.size)}
			var errs [2]error
			var wg sync.WaitGroup
			for i := range 2 {
				cfg := clientConfig(srv, bucket)
				cfg.HTTPClient = hold.client()
				s := newTestSink(t, SinkConfig{ClientConfig: cfg, PartSize: MinPartSize, Overwrite: OverwriteFail})
				wg.Go(func() {
					errs[i] = testkit.Deliver(t.Context(), s, fileOf("race.bin", contents[i]), contents[i])
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatal("both deliveries to the same key succeeded with overwrite fail")
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("both deliveries failed: %v; %v", errs[0], errs[1])
			}
			loser := errs[1-winner]
			want := fmt.Sprintf(`Commit("race.bin"): s3 sink: s3://%s/race.bin exists and overwrite is "fail": remove it or change overwrite: target already exists`, bucket)
			if loser.Error() != want {
				t.Errorf("the second delivery:\n got  %v\n want %s", loser, want)
			}
			if !errors.Is(loser, pipeline.ErrExists) || !pipeline.IsPermanent(loser) {
				t.Errorf("the second delivery's error %v is not a permanent ErrExists", loser)
			}
			got, _ := getObject(t, srv, bucket, "race.bin")
			if !bytes.Equal(got, contents[winner]) {
				t.Errorf("the object (%d bytes, sha256 %.16s) is not the winner's", len(got), testkit.SHA256Hex(got))
			}
			if _, sha := headSHA(t, srv, bucket, "race.bin"); sha != testkit.SHA256Hex(contents[winner]) {
				t.Errorf("x-amz-meta-sha256 %q, want the winner's %q", sha, testkit.SHA256Hex(contents[winner]))
			}
			if left := uploadsInProgress(t, srv, bucket, ""); len(left) != 0 {
				t.Errorf("uploads left in progress: %q", left)
			}
		})
	}
}

// TestOverwriteFailRepeatedCommit: a Commit repeated after one that
// completed the object (its answer lost, say) finds the object there and
// succeeds, since the object is its own, rather than failing with ErrExists.
func TestOverwriteFailRepeatedCommit(t *testing.T) {
	srv := minio.StartMinIO(t)
	s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), PartSize: MinPartSize, Overwrite: OverwriteFail})
	content := testkit.RandomContent(43, MinPartSize+7)
	f := fileOf("again.bin", content)
	up, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, up, content, 0, 1)
	f.SHA256 = testkit.SHA256Hex(content)
	for i := range 2 {
		if err := up.Commit(t.Context(), f); err != nil {
			t.Fatalf("Commit %d: %v", i+1, err)
		}
	}
	if got, _ := getObject(t, srv, srv.Bucket, "again.bin"); !bytes.Equal(got, content) {
		t.Error("content differs")
	}
}

package s3

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

// TestReopenReadsOnlyTheVersionOffered reads an object again by the key it
// was offered with, on a source of its own (as another runner would), and
// checks that a replaced or removed object is a change, and that Reoffer
// gives the present version under a new key.
func TestReopenReadsOnlyTheVersionOffered(t *testing.T) {
	srv := minio.StartMinIO(t)
	putObject(t, srv, srv.Bucket, "in/a|b.csv", []byte("first version"))
	_, items := drain(t, newTestSource(t, SourceConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: "in"}))
	key := items[0].File().Key
	other := newTestSource(t, SourceConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: "in"})

	ro, err := other.Reopen(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.ReadRange(t, ro, 6, 7); got != "version" {
		t.Fatalf("range 6+7 read %q, want %q", got, "version")
	}

	putObject(t, srv, srv.Bucket, "in/a|b.csv", []byte("other version"))
	if _, err := ro.OpenRange(t.Context(), 0, 5); !errors.Is(err, pipeline.ErrChanged) || !pipeline.IsPermanent(err) {
		t.Errorf("reading a replaced object: %v; want a permanent error matching ErrChanged", err)
	}
	next, err := other.Reoffer(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if f := next.File(); f.Key == key || f.Name != "a|b.csv" || f.Size != 13 {
		t.Errorf("reoffered %+v; want a|b.csv, 13 bytes, under a key other than %q", f, key)
	}
	nro, err := other.Reopen(t.Context(), next.File().Key)
	if err != nil {
		t.Fatal(err)
	}
	if got := testkit.ReadRange(t, nro, 0, 5); got != "other" {
		t.Errorf("the new version reads %q, want %q", got, "other")
	}

	if _, err := srv.Client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("in/a|b.csv")}); err != nil {
		t.Fatal(err)
	}
	if _, err := nro.OpenRange(t.Context(), 0, 5); !errors.Is(err, pipeline.ErrChanged) {
		t.Errorf("reading a removed object: %v; want an error matching ErrChanged", err)
	}
	if _, err := other.Reoffer(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reoffering a removed object: %v; want an error matching fs.ErrNotExist", err)
	}
	if _, err := other.Reopen(t.Context(), "no separator"); err == nil || err.Error() != `s3 source: "no separator" is not a key this source gave (want key|etag)` {
		t.Errorf("reopening a foreign key: %v", err)
	}
}

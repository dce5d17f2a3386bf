package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"no url here", "no url here"},
		{"mail me at a@b.example", "mail me at a@b.example"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"http://user:secret@127.0.0.1:9000", "http://user:xxxxx@127.0.0.1:9000"},
		{"https://user:secret@s3.example.com/bucket/key?x=1", "https://user:xxxxx@s3.example.com/bucket/key?x=1"},
		{`Put "http://user:secret@h:1/b/k?x-id=PutObject": dial tcp`, `Put "http://user:xxxxx@h:1/b/k?x-id=PutObject": dial tcp`},
		{"nats://tok3n@n1:4222, nats://n2:4222,tls://u:p@n3:4222", "nats://xxxxx@n1:4222, nats://n2:4222,tls://u:xxxxx@n3:4222"},
		{"http://:secret@h", "http://:xxxxx@h"},
		{"http://u:p@ss:w@rd@h/x", "http://u:xxxxx@h/x"}, // url.Parse takes the last "@"
		{"http://u:s%2Fcret@h", "http://u:xxxxx@h"},
		{"s3+https://u:secret@h", "s3+https://u:xxxxx@h"},
		{"http://h/path@not-userinfo", "http://h/path@not-userinfo"},
		{"http://h?q=a@b", "http://h?q=a@b"},
		{"a (http://u:secret@h) and (https://v:other@i)", "a (http://u:xxxxx@h) and (https://v:xxxxx@i)"},
		{"http://user:xxxxx@h", "http://user:xxxxx@h"},
		{"http://xxxxx@h", "http://xxxxx@h"},
	}
	for _, tt := range tests {
		if got := pipeline.RedactURLs(tt.in); got != tt.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The convention is net/url's where a password is set.
func TestRedactURLsMatchesNetURL(t *testing.T) {
	for _, s := range []string{"http://user:secret@h:9000/p", "https://a%20b:p%40ss@h/"} {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := pipeline.RedactURLs(s), u.Redacted(); got != want {
			t.Errorf("RedactURLs(%q) = %q, url.Redacted = %q", s, got, want)
		}
	}
}

func TestRedactErr(t *testing.T) {
	if pipeline.RedactErr(nil) != nil {
		t.Error("RedactErr(nil) != nil")
	}
	plain := errors.New("nothing to hide")
	if pipeline.RedactErr(plain) != plain {
		t.Error("an error without user info was wrapped")
	}
	base := pipeline.Permanent(fmt.Errorf("calling http://u:secret@h/x: %w", context.DeadlineExceeded))
	err := pipeline.RedactErr(base)
	if got, want := err.Error(), "calling http://u:xxxxx@h/x: context deadline exceeded"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !pipeline.IsPermanent(err) {
		t.Error("the redacted error lost what it wraps")
	}
}

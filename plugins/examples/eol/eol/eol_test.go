package eol

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestNewReader(t *testing.T) {
	for _, tc := range []struct {
		in   string
		crlf bool
		want string
	}{
		{"a\r\nb\nc\rd", false, "a\nb\nc\nd"},
		{"a\r\nb\nc\rd", true, "a\r\nb\r\nc\r\nd"},
		{"\r\r\n\n", false, "\n\n\n"},
		{"end\r", true, "end\r\n"},
		{"", true, ""},
	} {
		// One byte at a time, so CRLF pairs are split across reads.
		got, err := io.ReadAll(NewReader(iotest.OneByteReader(strings.NewReader(tc.in)), tc.crlf))
		if err != nil || string(got) != tc.want {
			t.Errorf("NewReader(%q, crlf=%v) = %q, %v; want %q", tc.in, tc.crlf, got, err, tc.want)
		}
	}
}

func TestNewReaderPassesErrors(t *testing.T) {
	_, err := io.ReadAll(NewReader(iotest.ErrReader(io.ErrClosedPipe), false))
	if err != io.ErrClosedPipe {
		t.Fatalf("err = %v, want %v", err, io.ErrClosedPipe)
	}
}

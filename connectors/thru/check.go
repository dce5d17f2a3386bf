package thru

import (
	"context"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
)

// checkSink is the sink spec's Check: building a Sink makes no request and
// touches no file, so validate builds one to find what NewSink refuses (a
// mode without its credentials, an endpoint_path that does not parse, a
// bad aes_key or base_url).
func checkSink(c pipeline.Config) error {
	s, err := newSinkFromConfig(context.Background(), c)
	if err != nil {
		return trimPrefix{err}
	}
	return s.Close()
}

// trimPrefix drops the "thru sink: " or "thru: " its messages start with;
// a flow file names the connector already.
type trimPrefix struct{ err error }

func (e trimPrefix) Error() string {
	msg := e.err.Error()
	for _, p := range []string{"thru sink: ", "thru: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func (e trimPrefix) Unwrap() error { return e.err }

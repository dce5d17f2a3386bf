package thru_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

func clientConfig(t *testing.T, site *thrusim.Server) thru.ClientConfig {
	c, err := thru.NewHeaderCipher("", aesKey, "")
	if err != nil {
		t.Fatal(err)
	}
	return thru.ClientConfig{BaseURL: site.URL, SiteAccessKey: accessKey, FlowSecretKey: secret1, FlowCode: "TRN1", Cipher: c,
		APIKey: apiKey, Retry: thru.RetryPolicy{Attempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}}
}

// deliveredName maps a delivery back to the File.Name it came from.
func deliveredName(d thrusim.Delivery) string {
	if d.Path == "" {
		return d.Name
	}
	return strings.ReplaceAll(strings.TrimPrefix(d.Path, `\`), `\`, "/") + "/" + d.Name
}

func sinkHarness(mode string) testkit.SinkHarness {
	var site *thrusim.Server
	return testkit.SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			site = newSite(t, func(c *thrusim.Config) { c.MaxChunkSize = 256 << 10 })
			s, err := thru.NewSink(thru.SinkConfig{Client: clientConfig(t, site), Mode: mode, EndpointPath: endpoint,
				PartSize: 128 << 10, SimpleThreshold: -1})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			var got []byte
			found := false
			for _, d := range site.Deliveries() {
				if deliveredName(d) == name {
					b, err := d.Bytes()
					if err != nil {
						t.Fatal(err)
					}
					got, found = b, true
				}
			}
			return got, found
		},
		List: func(t *testing.T) []string {
			var names []string
			for _, d := range site.Deliveries() {
				names = append(names, deliveredName(d))
			}
			return names
		},
	}
}

func TestSinkDropOffConformance(t *testing.T) { testkit.RunSinkTests(t, sinkHarness(thru.ModeDropOff)) }
func TestSinkContentConformance(t *testing.T) { testkit.RunSinkTests(t, sinkHarness(thru.ModeContent)) }

func TestSourceConformance(t *testing.T) {
	var site *thrusim.Server
	var spool string
	newSource := func(t *testing.T) pipeline.Source {
		src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: clientConfig(t, site), PollInterval: 10 * time.Millisecond, SpoolDir: spool})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	testkit.RunSourceTests(t, testkit.SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			site = newSite(t, nil)
			spool = t.TempDir()
			for name, b := range files {
				if _, err := site.AddPickup("TRN1", name, b); err != nil {
					t.Fatal(err)
				}
			}
			return newSource(t)
		},
		Reopen: newSource,
	})
}

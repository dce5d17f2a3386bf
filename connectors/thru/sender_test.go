package thru_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// With sender_attributes the source asks FileMetadata who sent each file.
func TestSourceSenderAttributes(t *testing.T) {
	site := newSite(t, func(c *thrusim.Config) {
		c.Flows[0].Sender = thru.Organization{ParticipantCode: "P0042", ExternalCode: "150483782", Name: "ACME Corp"}
	})
	code, err := site.AddPickup("TRN1", "orders.csv", []byte("id,amount\n"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := thru.NewSource(context.Background(), thru.SourceConfig{
		Client: clientConfig(t, site), PollInterval: 10 * time.Millisecond, SpoolDir: t.TempDir(), SenderAttributes: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it, err := src.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		thru.AttrFileCode:           code,
		thru.AttrSenderCode:         "P0042",
		thru.AttrSenderExternalCode: "150483782",
		thru.AttrSenderName:         "ACME Corp",
	}
	if diff := cmp.Diff(want, it.File().Attrs); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}

package thru_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// Picking up a file from a flow, answering it with a drop-off that reuses
// its File Code, and reporting the outcome, against the simulator.
func ExampleClient() {
	site, _ := thrusim.New(thrusim.Config{
		SiteAccessKey: "access", AESKey: "000102030405060708090a0b0c0d0e0f", PickupDelay: thrusim.D(0),
		Flows: []thrusim.FlowConfig{{Code: "TRN1", SecretKey: "secret"}},
	})
	defer site.Close() // removes the site's spool directory
	srv := httptest.NewServer(site)
	defer srv.Close()
	site.AddPickup("TRN1", "order.edi", []byte("ORDER 42"))

	cipher, _ := thru.NewHeaderCipher(thru.ModeCBCRandomIV, "000102030405060708090a0b0c0d0e0f", "")
	cl, _ := thru.NewClient(thru.ClientConfig{
		BaseURL: srv.URL, SiteAccessKey: "access", FlowSecretKey: "secret", FlowCode: "TRN1", Cipher: cipher,
	})
	ctx := context.Background()
	p, err := cl.Pickup(ctx)
	if err != nil {
		panic(err)
	}
	order, _ := io.ReadAll(p.Body)
	p.Body.Close()
	fmt.Printf("picked up %s: %q\n", p.Name, order)

	answer := "ACK 42"
	if err := cl.SendChunkZero(ctx, p.FileCode, "order.ack", int64(len(answer))); err != nil {
		panic(err)
	}
	if err := cl.SendChunk(ctx, p.FileCode, 1, int64(len(answer)), strings.NewReader(answer)); err != nil {
		panic(err)
	}
	if err := cl.SendEOF(ctx, p.FileCode); err != nil {
		panic(err)
	}
	err = cl.ReportOutcome(ctx, thru.FlowOutcome{FileCode: p.FileCode, FlowOutcome: thru.OutcomePassed, FlowInstanceCode: "run-1"})
	if err != nil {
		panic(err)
	}
	d := site.Deliveries()[0]
	content, err := d.Bytes()
	if err != nil {
		panic(err)
	}
	fmt.Printf("delivered %s: %q, same File Code: %v, outcomes: %d\n", d.Name, content, d.FileCode == p.FileCode, len(site.Outcomes()))
	if _, err := cl.Pickup(ctx); errors.Is(err, thru.ErrNoFile) {
		fmt.Println("nothing more to pick up")
	}
	// Output:
	// picked up order.edi: "ORDER 42"
	// delivered order.ack: "ACK 42", same File Code: true, outcomes: 1
	// nothing more to pick up
}

package testkit

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestNATS(t *testing.T) {
	url := StartNATS(t)
	nc := ConnectNATS(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("JetStream is not enabled: %v", err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("plain")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("plain", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hi" {
		t.Fatalf("NextMsg = %v, %v", m, err)
	}
}

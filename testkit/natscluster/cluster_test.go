package natscluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/testkit/natscluster"
)

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestClusterForms(t *testing.T) {
	c := natscluster.Start(t, 3)
	if got := len(strings.Split(c.URLs(), ",")); got != 3 {
		t.Fatalf("URLs() = %q: %d URLs, want 3", c.URLs(), got)
	}
	// Every node answers JetStream requests and belongs to one cluster.
	for i := range c.Len() {
		nc, err := nats.Connect(c.URL(i))
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if nc.ConnectedServerName() != c.Name(i) {
			t.Errorf("node %d at %s: connected to server %q, want %q", i, c.URL(i), nc.ConnectedServerName(), c.Name(i))
		}
		if nc.ConnectedClusterName() == "" {
			t.Errorf("node %d: not in a cluster", i)
		}
		js, _ := jetstream.New(nc)
		if _, err := js.AccountInfo(context.Background()); err != nil {
			t.Errorf("node %d: JetStream account info: %v", i, err)
		}
		nc.Close()
	}
	js := connect(t, c.URLs())
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FORMS", Subjects: []string{"forms.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("creating an R3 stream: %v", err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("R3 stream placement: %+v, want a leader and 2 replicas", info.Cluster)
	}
	peers := map[string]bool{info.Cluster.Leader: true}
	for _, r := range info.Cluster.Replicas {
		peers[r.Name] = true
	}
	for i := range c.Len() {
		if !peers[c.Name(i)] {
			t.Errorf("node %s holds no replica of the R3 stream (peers %v)", c.Name(i), peers)
		}
	}
}

// publish publishes msg i on subject, retrying through a leader election;
// the message id makes a retried publish land once.
func publish(t *testing.T, js jetstream.JetStream, subject string, i int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.Publish(ctx, subject, []byte("message "+strconv.Itoa(i)), jetstream.WithMsgID("m"+strconv.Itoa(i)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishing message %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readAll reads the stream message by message and checks it holds messages
// 0..n-1 in order, and nothing more. A read failing while the cluster elects
// a leader or the connection moves to another node is tried again.
func readAll(t *testing.T, js jetstream.JetStream, stream string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	retry := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f(ctx)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s of %s: %v", what, stream, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var info *jetstream.StreamInfo
	retry("stream info", func(ctx context.Context) error {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			info = s.CachedInfo()
		}
		return err
	})
	if info.State.Msgs != uint64(n) || info.State.FirstSeq != 1 || info.State.LastSeq != uint64(n) {
		t.Fatalf("%s holds %d messages, sequences %d to %d; want %d, 1 to %d", stream, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, n, n)
	}
	for i := range n {
		var data []byte
		retry(fmt.Sprintf("reading message %d", i+1), func(ctx context.Context) error {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			m, err := s.GetMsg(ctx, uint64(i+1))
			if err == nil {
				data = m.Data
			}
			return err
		})
		if want := "message " + strconv.Itoa(i); string(data) != want {
			t.Fatalf("message %d of %s is %q, want %q", i+1, stream, data, want)
		}
	}
}

// nodeIndex returns the index of the node named name.
func nodeIndex(t *testing.T, c *natscluster.Cluster, name string) int {
	t.Helper()
	for i := range c.Len() {
		if c.Name(i) == name {
			return i
		}
	}
	t.Fatalf("no node named %q", name)
	return -1
}

// localMessages is how many messages node i itself stores for stream,
// from its monitoring endpoint.
func localMessages(c *natscluster.Cluster, i int, stream string) (uint64, error) {
	resp, err := http.Get(c.MonitorURL(i) + "/jsz?accounts=true&streams=true")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var z struct {
		Accounts []struct {
			Streams []struct {
				Name  string `json:"name"`
				State struct {
					Msgs uint64 `json:"messages"`
				} `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&z); err != nil {
		return 0, err
	}
	for _, a := range z.Accounts {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State.Msgs, nil
			}
		}
	}
	return 0, fmt.Errorf("node %s holds no stream %s", c.Name(i), stream)
}

func TestR3StreamSurvivesNodeLossAndNodeRejoins(t *testing.T) {
	c := natscluster.Start(t, 3)
	js := connect(t, c.URLs())
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SURVIVE", Subjects: []string{"survive"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		publish(t, js, "survive", i)
	}

	// Stop the stream's leader: the others elect a new one and publishing goes on.
	down := nodeIndex(t, c, s.CachedInfo().Cluster.Leader)
	c.Stop(down)
	for i := 50; i < 100; i++ {
		publish(t, js, "survive", i)
	}
	readAll(t, js, "SURVIVE", 100)

	// Restarted, the node rejoins and catches up on what it missed.
	c.Restart(down)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := localMessages(c, down, "SURVIVE")
		if err == nil && n == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted node %s holds %d of 100 messages (%v)", c.Name(down), n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// With another node killed, the rejoined one is needed for a quorum.
	other := (down + 1) % c.Len()
	c.Kill(other)
	for i := 100; i < 120; i++ {
		publish(t, js, "survive", i)
	}
	readAll(t, js, "SURVIVE", 120)
}

func TestSingleNodeIsStandAlone(t *testing.T) {
	c := natscluster.Start(t, 1)
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if name := nc.ConnectedClusterName(); name != "" {
		t.Errorf("a one-node cluster reports cluster %q, want none", name)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}}); err != nil {
		t.Fatalf("JetStream on a single node: %v", err)
	}
}

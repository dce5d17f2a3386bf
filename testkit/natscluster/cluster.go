package natscluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/testkit"
)

// Server limits of every node, the same as the runner's embedded server
// (bus.EmbeddedMaxPayload), so flows behave alike on both.
const (
	maxPayload = 8 << 20
	maxPending = 64 << 20
	maxMemory  = 64 << 20
)

// How long a cluster or a restarted node may take to become ready, and how
// long a stopped node may take to shut down before it is killed.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Cluster is a running set of nats-server processes forming one JetStream
// cluster. Call its methods from the goroutine of the test it was started
// for: they fail that test when a node cannot be started again.
type Cluster struct {
	t     testing.TB
	bin   string
	name  string
	mu    sync.Mutex
	nodes []*node
}

// node is one server: its ports and store stay the same across restarts.
type node struct {
	name                   string
	client, route, monitor int
	dir, conf              string
	out                    *tailBuffer
	cmd                    *exec.Cmd
	exited                 chan struct{} // closed when cmd has ended
	running                bool
}

// Binary returns the path of the nats-server binary, or "" if there is none.
func Binary() string { return testkit.FindBinary("MFTFLOW_NATS_SERVER", "nats-server") }

// Start starts a cluster of nodes nats-server processes (nodes ≥ 1; one node
// runs stand-alone, without a cluster) on 127.0.0.1, with JetStream and a
// store directory per node under a temporary directory. It returns once the
// cluster has a JetStream meta leader that every node follows and a stream
// with min(nodes, 3) replicas can be placed. Every node is killed when t
// ends. Without a nats-server binary it skips t.
func Start(t testing.TB, nodes int) *Cluster {
	t.Helper()
	if nodes < 1 {
		t.Fatalf("natscluster.Start: %d nodes; want at least 1", nodes)
	}
	bin := Binary()
	if bin == "" {
		t.Skip("nats-server not found: run scripts/nats-server.sh (builds bin/nats-server) or set MFTFLOW_NATS_SERVER")
	}
	var lastErr error
	for range 3 { // a port taken between picking and binding: try again
		c, err := start(t, bin, nodes)
		if err == nil {
			return c
		}
		lastErr = err
	}
	t.Fatalf("starting a %d-node NATS cluster (%s): %v", nodes, bin, lastErr)
	return nil
}

func start(t testing.TB, bin string, n int) (*Cluster, error) {
	root := t.TempDir()
	c := &Cluster{t: t, bin: bin, name: "mftflow-test-" + randomHex(4)}
	for i := range n {
		nd := &node{name: fmt.Sprintf("n%d", i), dir: filepath.Join(root, fmt.Sprintf("n%d", i)), out: &tailBuffer{}}
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		nd.client, nd.route, nd.monitor = ports[0], ports[1], ports[2]
		nd.conf = nd.dir + ".conf"
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		if err := os.WriteFile(nd.conf, []byte(c.config(nd)), 0o644); err != nil {
			return nil, err
		}
	}
	for _, nd := range c.nodes {
		if err := c.launch(nd); err != nil {
			c.killAll()
			return nil, err
		}
	}
	if err := c.waitReady(); err != nil {
		c.killAll()
		return nil, err
	}
	t.Cleanup(c.killAll)
	return c, nil
}

// config is nd's configuration file: the other nodes are its routes.
func (c *Cluster) config(nd *node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\n", nd.name)
	fmt.Fprintf(&b, "listen: \"127.0.0.1:%d\"\n", nd.client)
	fmt.Fprintf(&b, "http: \"127.0.0.1:%d\"\n", nd.monitor)
	fmt.Fprintf(&b, "max_payload: %d\nmax_pending: %d\n", maxPayload, maxPending)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_memory_store: %d\n}\n", nd.dir, maxMemory)
	if len(c.nodes) > 1 {
		var routes []string
		for _, o := range c.nodes {
			if o != nd {
				routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", o.route)))
			}
		}
		fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n",
			c.name, nd.route, strings.Join(routes, ", "))
	}
	return b.String()
}

// launch starts nd's process on its configuration.
func (c *Cluster) launch(nd *node) error {
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Env = minimalEnv()
	cmd.SysProcAttr = procAttr()
	cmd.Stdout, cmd.Stderr = nd.out, nd.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %s: %w", nd.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // exited is the news; the output says why
	nd.cmd, nd.exited, nd.running = cmd, exited, true
	return nil
}

// Len is the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// URL is node i's client URL, nats://127.0.0.1:PORT.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.node(i).client) }

// URLs are every node's client URL, comma-separated, as nats.Connect and the
// runner's --nats-url take them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// MonitorURL is node i's HTTP monitoring endpoint, http://127.0.0.1:PORT.
func (c *Cluster) MonitorURL(i int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.node(i).monitor)
}

// Name is node i's server name.
func (c *Cluster) Name(i int) string { return c.node(i).name }

func (c *Cluster) node(i int) *node {
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("natscluster: no node %d in a %d-node cluster", i, len(c.nodes))
	}
	return c.nodes[i]
}

// Stop shuts node i down gracefully (SIGTERM), killing it if it has not ended
// within 30s, and waits for it. Its store stays for Restart.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.node(i)
	if !nd.running {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGTERM) // fails only when it has exited already
	select {
	case <-nd.exited:
	case <-time.After(stopTimeout):
		c.t.Logf("natscluster: node %s did not stop within %v after SIGTERM; killing it", nd.name, stopTimeout)
		_ = nd.cmd.Process.Kill()
		<-nd.exited
	}
	nd.running = false
}

// Kill ends node i with SIGKILL, as a crash would, and waits for it to end.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kill(c.node(i))
}

func (c *Cluster) kill(nd *node) {
	if !nd.running {
		return
	}
	_ = nd.cmd.Process.Kill() // fails only when it has exited already
	<-nd.exited
	nd.running = false
}

func (c *Cluster) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		c.kill(nd)
	}
}

// Restart starts node i again (stopping it first if it runs) on the same
// ports and store, so it rejoins the cluster, and waits until its /healthz
// reports it healthy (JetStream enabled and current with the cluster). A
// test that needs the node's copy of a stream complete waits for that itself.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.node(i)
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		before := nd.out.Len()
		if err = c.launch(nd); err != nil {
			break
		}
		// A port still held by the old process's lingering socket makes
		// the new one exit at once: try again shortly.
		err = c.waitNode(nd, readyTimeout)
		if err == nil || !strings.Contains(nd.out.Since(before), "address already in use") {
			break
		}
		c.kill(nd)
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.kill(nd)
		c.t.Fatalf("natscluster: restarting node %s: %v", nd.name, err)
	}
}

// waitReady waits until every node is healthy, a meta leader is known to all
// of them with every peer current, and a replicated stream can be placed.
func (c *Cluster) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for _, nd := range c.nodes {
		if err := c.waitNode(nd, time.Until(deadline)); err != nil {
			return err
		}
	}
	if len(c.nodes) > 1 {
		if err := c.waitMeta(deadline); err != nil {
			return err
		}
	}
	return c.waitPlacement(deadline)
}

// waitNode waits until nd's /healthz answers 200.
func (c *Cluster) waitNode(nd *node, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.monitor)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-nd.exited:
			return fmt.Errorf("node %s exited; its output:\n%s", nd.name, nd.out.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body := readSome(resp)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("node %s not healthy after %v (last answer: %s); its output:\n%s", nd.name, limit, last, nd.out.String())
}

// jsz is the part of the /jsz monitoring answer the cluster waits on.
type jsz struct {
	Meta *struct {
		Leader   string `json:"leader"`
		Size     int    `json:"cluster_size"`
		Replicas []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
		} `json:"replicas"`
	} `json:"meta_cluster"`
}

func (c *Cluster) jsz(nd *node) (jsz, error) {
	var z jsz
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", nd.monitor))
	if err != nil {
		return z, err
	}
	defer discard.Close(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return z, fmt.Errorf("/jsz of node %s: %s", nd.name, resp.Status)
	}
	return z, json.NewDecoder(resp.Body).Decode(&z)
}

// waitMeta waits until every node names the same meta leader and the leader
// sees every other node as a current peer.
func (c *Cluster) waitMeta(deadline time.Time) error {
	var last string
	for time.Now().Before(deadline) {
		last = c.metaState()
		if last == "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no JetStream meta leader followed by all %d nodes after %v: %s", len(c.nodes), readyTimeout, last)
}

// metaState returns "" when the meta group is complete, else what is missing.
func (c *Cluster) metaState() string {
	leader := ""
	for _, nd := range c.nodes {
		z, err := c.jsz(nd)
		if err != nil {
			return err.Error()
		}
		if z.Meta == nil || z.Meta.Leader == "" {
			return "node " + nd.name + " knows no meta leader"
		}
		if leader != "" && z.Meta.Leader != leader {
			return fmt.Sprintf("nodes disagree on the meta leader (%s, %s)", leader, z.Meta.Leader)
		}
		leader = z.Meta.Leader
	}
	for _, nd := range c.nodes {
		if nd.name != leader {
			continue
		}
		z, err := c.jsz(nd)
		if err != nil {
			return err.Error()
		}
		current := 0
		for _, r := range z.Meta.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if current < len(c.nodes)-1 {
			return fmt.Sprintf("meta leader %s sees %d of %d peers current", leader, current, len(c.nodes)-1)
		}
		return ""
	}
	return "meta leader " + leader + " is not a node of this cluster"
}

// waitPlacement creates and deletes a stream with min(nodes, 3) replicas:
// the meta leader places streams only on peers it has heard from, which may
// lag behind the peers being current.
func (c *Cluster) waitPlacement(deadline time.Time) error {
	nc, err := nats.Connect(c.URLs(), nats.Name("natscluster readiness"))
	if err != nil {
		return fmt.Errorf("connecting to the cluster at %s: %w", c.URLs(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	name := "NATSCLUSTER_READY_" + randomHex(4)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{"natscluster.ready." + name},
			Storage: jetstream.FileStorage, Replicas: min(len(c.nodes), 3), MaxMsgs: 1,
		})
		if err == nil {
			err = js.DeleteStream(ctx, name)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("placing a %d-replica stream: %w", min(len(c.nodes), 3), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readSome reads the start of resp's body, for messages, and closes it.
func readSome(resp *http.Response) string {
	defer discard.Close(resp.Body)
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return strings.TrimSpace(string(b))
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			discard.Close(l)
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// minimalEnv passes the server only what it needs from the test's
// environment.
func minimalEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// tailBuffer keeps the last 64 KiB of a server's output for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	b     []byte
	total int
}

const tailSize = 64 << 10

func (s *tailBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	s.total += len(p)
	if len(s.b) > tailSize {
		s.b = append(s.b[:0], s.b[len(s.b)-tailSize:]...)
	}
	return len(p), nil
}

// Len is how many bytes were ever written.
func (s *tailBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Since returns what was written after the first n bytes, as far as kept.
func (s *tailBuffer) Since(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.total - len(s.b) // bytes dropped from the front
	return string(s.b[max(n-kept, 0):])
}

func (s *tailBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

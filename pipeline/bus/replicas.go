package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ClusterReplicas is the replica count of a flow's streams on a JetStream
// cluster of at least that many servers.
const ClusterReplicas = 3

// DetectReplicas returns the replica count for new streams when none is
// configured: ClusterReplicas when the JetStream cluster behind js can place
// a stream on that many servers, else 1.
//
// A normal client has no direct way to count the JetStream servers of a
// cluster: the server's INFO lists the cluster's client URLs (connect_urls),
// which include servers without JetStream and are left out when a cluster
// does not advertise them, and the JetStream account info says nothing about
// the cluster; the servers' own view ($SYS) needs the system account. So a
// server outside any cluster gives 1 without asking, and otherwise
// DetectReplicas asks JetStream itself: it creates a small stream with
// ClusterReplicas replicas and deletes it at once. JetStream places it on any
// servers it has heard from, including ones briefly offline, so a node down
// for maintenance does not lower the count. A placement refusal gives 1;
// any other failure (no JetStream, no permission to create streams named
// MFT_…) is returned.
func DetectReplicas(ctx context.Context, js jetstream.JetStream) (int, error) {
	if nc := js.Conn(); nc != nil && nc.ConnectedClusterName() == "" {
		return 1, nil
	}
	b := make([]byte, 8)
	rand.Read(b)
	id := hex.EncodeToString(b)
	name := "MFT_PROBE_" + id
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "mftflow: counts the JetStream servers of the cluster; deleted at once",
		Subjects:    []string{"mft._probe." + id},
		Storage:     jetstream.FileStorage,
		Replicas:    ClusterReplicas,
		MaxMsgs:     1,
	})
	if isPlacementError(err) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("probing the JetStream cluster for %d replicas: %w", ClusterReplicas, err)
	}
	// The probe must not stay behind when ctx is about to end.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := js.DeleteStream(dctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("deleting the replica probe stream %s: %w", name, err)
	}
	return ClusterReplicas, nil
}

// isPlacementError reports whether err is JetStream refusing a stream's
// replica count for want of servers.
func isPlacementError(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeNoPeers, errCodeInsufficientResources, errCodeReplicasNotSupported:
		return true
	}
	return false
}

// JetStream API error codes (nats-server's errors.json) that nats.go does
// not name.
const (
	errCodeNoPeers               jetstream.ErrorCode = 10005 // no suitable peers for placement
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	errCodeReplicasNotSupported  jetstream.ErrorCode = 10074 // replicas > 1 not supported in non-clustered mode
)

// replicasOf returns the replica count of stream name, or 0 if there is no
// such stream.
func replicasOf(ctx context.Context, js jetstream.JetStream, name string) (int, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading stream %s: %w", name, err)
	}
	return s.CachedInfo().Config.Replicas, nil
}

// chooseReplicas returns the replica count of a flow's streams when none is
// configured: what DetectReplicas finds, or more if an existing stream of
// the flow already has more. A count found lower than the streams have (a
// cluster just restarted, servers not heard from yet) never shrinks them;
// only an explicit count does.
func chooseReplicas(ctx context.Context, js jetstream.JetStream, n Names) (int, error) {
	r, err := DetectReplicas(ctx, js)
	if err != nil {
		return 0, err
	}
	for _, name := range []string{n.ChunkStream(), n.TaskStream(), n.KVStream()} {
		have, err := replicasOf(ctx, js, name)
		if err != nil {
			return 0, err
		}
		r = max(r, have)
	}
	return r, nil
}

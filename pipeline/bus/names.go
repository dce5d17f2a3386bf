package bus

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Names are the JetStream names used by one flow. Flow and sink names are
// restricted to letters, digits, '-' and '_' (pipeline.Flow.Check), which are
// valid in stream, subject and bucket names.
type Names struct{ Flow string }

func (n Names) ChunkStream() string { return "MFT_" + n.Flow + "_CHUNKS" }
func (n Names) TaskStream() string  { return "MFT_" + n.Flow + "_TASKS" }
func (n Names) Bucket() string      { return BucketPrefix + n.Flow }

// AuditStream holds the flow's audit trail (package pipeline/audit).
func (n Names) AuditStream() string { return "MFT_" + n.Flow + "_AUDIT" }

// AuditSubject is where the flow's audit records are appended.
func (n Names) AuditSubject() string { return "mft." + n.Flow + ".audit" }

// KVStream is the stream JetStream keeps the KV bucket in.
func (n Names) KVStream() string { return "KV_" + n.Bucket() }

// ChunkSubject is where the chunks of file id are published.
func (n Names) ChunkSubject(id string) string { return "mft." + n.Flow + ".chunk." + id }

// TaskSubject is where delivery tasks for sink are published.
func (n Names) TaskSubject(sink string) string { return "mft." + n.Flow + ".task." + sink }

// AliveSubject is where the run with id run answers while its NATS
// connection lasts (the source lease's liveness check). Run ids are
// hashed: they may hold characters that subjects cannot.
func (n Names) AliveSubject(run string) string {
	h := sha256.Sum256([]byte(run))
	return "mft." + n.Flow + ".alive." + hex.EncodeToString(h[:8])
}

// NotifyStream holds the flow's notifications until they are sent
// (package pipeline/notify).
func (n Names) NotifyStream() string { return "MFT_" + n.Flow + "_NOTIFY" }

// NotifySubject is where notifications wait for the target with id target.
func (n Names) NotifySubject(target string) string { return "mft." + n.Flow + ".notify." + target }

// NotifyConsumer is the durable work-queue consumer that sends target's
// notifications.
func (n Names) NotifyConsumer(target string) string { return "notify_" + target }

// NotifyBucket is the KV bucket of the state of the flow's notification
// targets (failing since, last error, given up). Its name does not start
// with BucketPrefix: it is not a flow's state bucket.
func (n Names) NotifyBucket() string { return "mftnotify_" + n.Flow }

// Consumer is the durable work-queue consumer of sink's tasks.
func (n Names) Consumer(sink string) string { return "sink_" + sink }

// BucketPrefix starts the name of every flow's KV bucket; the status command
// finds flows by it.
const BucketPrefix = "mft_"

// FlowOfBucket returns the flow name of a KV bucket, or "" if it is not one.
func FlowOfBucket(bucket string) string {
	f, ok := strings.CutPrefix(bucket, BucketPrefix)
	if !ok {
		return ""
	}
	return f
}

// FileID derives a file's id from its flow and source key: the same file
// offered again after a restart gets the same id.
func FileID(flow, key string) string {
	h := sha256.Sum256([]byte(strconv.Itoa(len(flow)) + ":" + flow + key))
	return hex.EncodeToString(h[:16])
}

// KV keys.
func ManifestKey(id string) string       { return "file." + id }
func DeliveryKey(id, sink string) string { return "dlv." + id + "." + sink }

// ReplayKey marks a finished file with a replayed delivery under way, so
// runners find such files without reading every manifest.
func ReplayKey(id string) string { return "replay." + id }

// KeyKind says which record a key of a flow's bucket holds.
type KeyKind int

const (
	KeyManifest      KeyKind = iota + 1 // ManifestKey
	KeyDelivery                         // DeliveryKey
	KeyGroup                            // GroupKey
	KeyGroupDelivery                    // GroupDeliveryKey
	KeyReplay                           // ReplayKey
	KeyPoll                             // PollKey
)

// Key is a key of a flow's bucket taken apart.
type Key struct {
	Kind KeyKind
	ID   string // the file's or group's id; "" for KeyPoll
	Sink string // for KeyDelivery and KeyGroupDelivery
}

// singleKinds are the kinds of key that end with an id, by prefix.
var singleKinds = map[string]KeyKind{"file": KeyManifest, "grp": KeyGroup, "replay": KeyReplay}

// ParseKey takes apart a key that ManifestKey, DeliveryKey, GroupKey,
// GroupDeliveryKey or ReplayKey built, or PollKey. It reports false for any
// other key. A sink name ends a key, so the id is what comes before the
// first dot after the prefix.
func ParseKey(key string) (Key, bool) {
	prefix, rest, _ := strings.Cut(key, ".")
	switch prefix {
	case "file", "grp", "replay":
		if rest == "" || strings.Contains(rest, ".") {
			return Key{}, false
		}
		return Key{Kind: singleKinds[prefix], ID: rest}, true
	case "dlv", "gdlv":
		id, sink, ok := strings.Cut(rest, ".")
		if !ok {
			return Key{}, false
		}
		kind := KeyDelivery
		if prefix == "gdlv" {
			kind = KeyGroupDelivery
		}
		return Key{Kind: kind, ID: id, Sink: sink}, true
	}
	if key == PollKey {
		return Key{Kind: KeyPoll}, true
	}
	return Key{}, false
}

// Header names of chunk messages.
const (
	HeaderIndex = "Mft-Index" // 0-based chunk index
	HeaderLen   = "Mft-Len"   // length of the raw (uncompressed) data
	HeaderSum   = "Mft-Sum"   // CRC-32C of the raw data, 8 hex digits
	HeaderEnc   = "Mft-Enc"   // "s2" or "zstd"; absent when not compressed
	HeaderLast  = "Mft-Last"  // "1" on the file's last chunk
	// HeaderRef is "1" on a chunk that carries no data, only where its
	// bytes are in the source file (bus.payload reference): Mft-Len bytes
	// at Mft-Index × the manifest's chunk size, whose CRC-32C is Mft-Sum.
	HeaderRef = "Mft-Ref"
)

// HeaderRoom is what chunk headers may add to a message beyond the payload;
// a chunk size plus HeaderRoom must fit in the server's max_payload.
const HeaderRoom = 1024

// PollKey holds the flow's Poll record.
const PollKey = "poll"

// Poll is when a scheduled flow's source is polled next, as its run last
// wrote it.
type Poll struct {
	Next  time.Time `json:"next"`
	Until time.Time `json:"until,omitzero"` // the window's end, when polling goes on until then
	Run   string    `json:"run"`
}

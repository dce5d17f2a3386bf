package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConflict is returned (wrapped) by Store.Save when the record changed
// since the revision given: another watcher wrote first. The caller loads
// the record again and decides again.
var ErrConflict = errors.New("the record changed since it was read")

// Store keeps each expectation's Record, so that a restarted watcher goes
// on where the last one stopped, and watchers of several runners sharing
// one store raise each event once: a watcher raises an event only after
// its write of it went through, and Save lets only one writer through per
// revision.
type Store interface {
	// Load returns the record of the named expectation and its revision;
	// for none it returns the zero Record and revision 0.
	Load(ctx context.Context, name string) (Record, uint64, error)
	// Save writes rec if the stored revision is still rev (0: if there is
	// none), and returns the new revision. If not, it returns an error
	// wrapping ErrConflict and writes nothing.
	Save(ctx context.Context, name string, rec Record, rev uint64) (uint64, error)
}

// MemoryStore is a Store in memory: state lasts as long as the process.
// It is safe for concurrent use; watchers given the same MemoryStore share
// their state as runners sharing a KV bucket do.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]storedRecord
	next    uint64
}

type storedRecord struct {
	data []byte // JSON, as a KV bucket keeps it, so nothing is shared
	rev  uint64
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{records: map[string]storedRecord{}} }

// Load implements Store.
func (s *MemoryStore) Load(_ context.Context, name string) (Record, uint64, error) {
	s.mu.Lock()
	stored, ok := s.records[name]
	s.mu.Unlock()
	var rec Record
	if !ok {
		return rec, 0, nil
	}
	if err := json.Unmarshal(stored.data, &rec); err != nil {
		return Record{}, 0, fmt.Errorf("decoding the record of expectation %s: %w", name, err)
	}
	return rec, stored.rev, nil
}

// Save implements Store.
func (s *MemoryStore) Save(_ context.Context, name string, rec Record, rev uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encoding the record of expectation %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records[name].rev != rev {
		return 0, fmt.Errorf("saving the record of expectation %s: %w", name, ErrConflict)
	}
	s.next++
	s.records[name] = storedRecord{data, s.next}
	return s.next, nil
}

// KVStore is a Store in a JetStream KV bucket, under the keys KeyPrefix +
// the expectation's name. Its compare-and-swap is the bucket's: Save is a
// Create for revision 0, else an Update at rev.
type KVStore struct{ kv jetstream.KeyValue }

// KeyPrefix starts the KV keys of expectation records.
const KeyPrefix = "sla."

// NewKVStore returns a Store in kv: the flow's own bucket (the engine's
// bus.Names.Bucket), since the keys name expectations, not flows.
func NewKVStore(kv jetstream.KeyValue) *KVStore { return &KVStore{kv} }

// Load implements Store.
func (s *KVStore) Load(ctx context.Context, name string) (Record, uint64, error) {
	e, err := s.kv.Get(ctx, KeyPrefix+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, nil
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("reading %s%s from KV bucket %s: %w", KeyPrefix, name, s.kv.Bucket(), err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, 0, fmt.Errorf("decoding %s%s from KV bucket %s: %w", KeyPrefix, name, s.kv.Bucket(), err)
	}
	return rec, e.Revision(), nil
}

// Save implements Store.
func (s *KVStore) Save(ctx context.Context, name string, rec Record, rev uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encoding the record of expectation %s: %w", name, err)
	}
	key := KeyPrefix + name
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, key, data)
	} else {
		next, err = s.kv.Update(ctx, key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
		return 0, fmt.Errorf("writing %s to KV bucket %s: %w", key, s.kv.Bucket(), ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s to KV bucket %s: %w", key, s.kv.Bucket(), err)
	}
	return next, nil
}

// isWrongSequence reports a compare-and-swap that lost: the key's revision
// is no longer the one given.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

var (
	_ Store = (*MemoryStore)(nil)
	_ Store = (*KVStore)(nil)
)

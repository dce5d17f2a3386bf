package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// ErrSourceClosed is returned by MemorySource.Next after Close.
var ErrSourceClosed = errors.New("testkit: memory source closed")

// MemorySource is a Source over files held in memory. It offers each file
// once, in name order for the files given to NewMemorySource and then in the
// order of Add. Its items implement pipeline.RangeOpener. Files stay at the
// source whatever the outcome (an after action of "keep"); Acked records the
// outcomes.
//
// Names are offered exactly as given, not cleaned, so engine tests can feed
// hostile names ("../x") through it.
//
// A MemorySource is safe for concurrent use.
type MemorySource struct {
	finite bool
	store  *memStore

	mu     sync.Mutex
	queue  []*memFile
	closed bool
	wake   chan struct{} // closed and replaced when queue or closed change
}

// memStore is what a MemorySource and the sources Reopen makes from it share:
// the files and their outcomes.
type memStore struct {
	mu    sync.Mutex
	files map[string]*memFile
	acked map[string]pipeline.Outcome
}

type memFile struct {
	file pipeline.File
	data []byte
}

var _ pipeline.Source = (*MemorySource)(nil)

// NewMemorySource returns a source offering files (name -> content). If finite
// is true, Next returns io.EOF once every file was offered (until Add offers
// more); otherwise Next waits for Add. The contents are copied.
func NewMemorySource(files map[string][]byte, finite bool) *MemorySource {
	s := &MemorySource{
		finite: finite,
		store:  &memStore{files: map[string]*memFile{}, acked: map[string]pipeline.Outcome{}},
		wake:   make(chan struct{}),
	}
	for _, name := range sortedNames(files) {
		s.Add(name, files[name])
	}
	return s
}

// memoryModTime is the ModTime of every memory file, so that Keys and
// metadata do not depend on when a test ran.
var memoryModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Add offers a file: a new one, or a new version of one offered before, which
// is offered again. data is copied. Add may be called while Next waits.
func (s *MemorySource) Add(name string, data []byte) {
	data = bytes.Clone(data)
	if data == nil {
		data = []byte{}
	}
	sum := SHA256Hex(data)
	mf := &memFile{
		file: pipeline.File{
			// Stable across restarts: the same name and content give the same Key.
			Key:     name + "|" + sum[:16],
			Name:    name,
			Size:    int64(len(data)),
			SHA256:  sum,
			ModTime: memoryModTime,
		},
		data: data,
	}
	s.store.mu.Lock()
	s.store.files[name] = mf
	s.store.mu.Unlock()

	s.mu.Lock()
	s.queue = append(s.queue, mf)
	s.signal()
	s.mu.Unlock()
}

// signal wakes waiting calls to Next. s.mu is held.
func (s *MemorySource) signal() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// Next returns the next file not yet offered. With none left it returns
// io.EOF if the source is finite, and otherwise waits for Add or for ctx to
// end (returning ctx.Err()). After Close it returns ErrSourceClosed.
func (s *MemorySource) Next(ctx context.Context) (pipeline.Item, error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return nil, ErrSourceClosed
		case len(s.queue) > 0:
			mf := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return &memItem{store: s.store, f: mf}, nil
		case s.finite:
			s.mu.Unlock()
			return nil, io.EOF
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Close makes Next return ErrSourceClosed, waking a Next that waits. Items already
// returned stay usable. Close always returns nil.
func (s *MemorySource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.signal()
	}
	return nil
}

// Reopen returns a new source over the same files, as a runner restarted
// with the same configuration would see them: it offers every file again, in
// name order, with the same Keys, and shares Acked with s.
func (s *MemorySource) Reopen() *MemorySource {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	r := &MemorySource{finite: s.finite, store: s.store, wake: make(chan struct{})}
	for _, name := range sortedNames(s.store.files) {
		r.queue = append(r.queue, s.store.files[name])
	}
	return r
}

// Acked returns the last outcome acked for each file, by name.
func (s *MemorySource) Acked() map[string]pipeline.Outcome {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	out := make(map[string]pipeline.Outcome, len(s.store.acked))
	for name, o := range s.store.acked {
		out[name] = o
	}
	return out
}

// Has reports whether the source holds a file called name. Memory files stay
// whatever their outcome, so it is true for every file added.
func (s *MemorySource) Has(name string) bool {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	_, ok := s.store.files[name]
	return ok
}

// memItem is one offered file.
type memItem struct {
	store *memStore
	f     *memFile
}

var (
	_ pipeline.Item        = (*memItem)(nil)
	_ pipeline.RangeOpener = (*memItem)(nil)
)

func (it *memItem) File() pipeline.File { return it.f.file }

func (it *memItem) Open(ctx context.Context) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(it.f.data)), nil
}

func (it *memItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	size := int64(len(it.f.data))
	if offset < 0 || length < 0 || offset > size || length > size-offset {
		return nil, fmt.Errorf("opening %q at %d for %d bytes: outside the file's %d bytes", it.f.file.Name, offset, length, size)
	}
	return io.NopCloser(bytes.NewReader(it.f.data[offset : offset+length])), nil
}

// Ack records o for the file's name. It is idempotent and never fails.
func (it *memItem) Ack(ctx context.Context, o pipeline.Outcome) error {
	if o.Sinks != nil {
		sinks := make(map[string]pipeline.SinkResult, len(o.Sinks))
		for k, v := range o.Sinks {
			sinks[k] = v
		}
		o.Sinks = sinks
	}
	it.store.mu.Lock()
	defer it.store.mu.Unlock()
	it.store.acked[it.f.file.Name] = o
	return nil
}

// MemorySink is a Sink that keeps files in memory. It is strict, to catch
// engine mistakes: WritePart reads exactly the part's size, and Commit fails
// unless the parts are numbered 0..n-1 with contiguous offsets, only part n-1
// is Last, and the content matches the Size and SHA256 given to Commit.
//
// Parts are kept per upload, keyed by File.ID (the Name if the ID is empty).
// State returns that key; Open with it resumes the upload and the parts
// already written remain. Resuming an upload that was committed returns an
// error wrapping pipeline.ErrSkip, since the file was delivered; resuming
// one that is unknown (aborted) starts it empty, and Commit then reports the
// missing parts. Open without resume state starts the upload afresh.
//
// A MemorySink is safe for concurrent use. Close does nothing: like a bucket,
// the stored files outlive the sink value.
type MemorySink struct {
	mu        sync.Mutex
	plan      pipeline.PartPlan
	uploads   map[string]*memUpload
	committed map[string]bool // upload keys
	files     map[string][]byte
	commits   int
	writes    int
}

var _ pipeline.Sink = (*MemorySink)(nil)

// NewMemorySink returns an empty sink whose plan is one bus chunk per part at
// the flow's default concurrency (PartPlan{}).
func NewMemorySink() *MemorySink {
	return &MemorySink{
		uploads:   map[string]*memUpload{},
		committed: map[string]bool{},
		files:     map[string][]byte{},
	}
}

// SetPlan sets the part plan of uploads opened from now on.
func (s *MemorySink) SetPlan(p pipeline.PartPlan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plan = p
}

// Files returns a copy of every committed file, by File.Name.
func (s *MemorySink) Files() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.files))
	for name, b := range s.files {
		out[name] = bytes.Clone(b)
	}
	return out
}

// Commits returns how many Commits succeeded, so a test can tell that no file
// was delivered twice.
func (s *MemorySink) Commits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits
}

// PartWrites returns how many WritePart calls succeeded, so a test can tell
// that a resumed delivery did not send again what the sink already held.
func (s *MemorySink) PartWrites() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Pending returns the keys of uploads opened but neither committed nor
// aborted, sorted: what a crash or a forgotten Abort leaves behind.
func (s *MemorySink) Pending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedNames(s.uploads)
}

func uploadKey(f pipeline.File) string {
	if f.ID != "" {
		return f.ID
	}
	return f.Name
}

// Open starts or resumes the upload of f. See MemorySink for resume.
func (s *MemorySink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := uploadKey(f)
	if key == "" {
		return nil, pipeline.Permanent(errors.New("memory sink: opening a file with neither ID nor Name"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if resume != nil {
		if string(resume) != key {
			return nil, pipeline.Permanent(fmt.Errorf("memory sink: resuming %q: the state names upload %q, not %q", f.Name, resume, key))
		}
		if u, ok := s.uploads[key]; ok {
			return u, nil
		}
		if s.committed[key] {
			return nil, fmt.Errorf("memory sink: resuming %q: the upload was committed: %w", f.Name, pipeline.ErrSkip)
		}
	}
	if old, ok := s.uploads[key]; ok {
		old.done = "replaced by a new Open"
	}
	u := &memUpload{sink: s, key: key, name: f.Name, plan: s.plan, parts: map[int]memPart{}}
	s.uploads[key] = u
	return u, nil
}

// Close does nothing and returns nil; the sink stays usable.
func (s *MemorySink) Close() error { return nil }

type memPart struct {
	p    pipeline.Part
	data []byte
}

// memUpload is one file being written. Its fields are guarded by sink.mu.
type memUpload struct {
	sink  *MemorySink
	key   string
	name  string
	plan  pipeline.PartPlan
	parts map[int]memPart
	done  string // why the upload takes no more calls; "" while open
}

var _ pipeline.Upload = (*memUpload)(nil)

func (u *memUpload) Plan() pipeline.PartPlan { return u.plan }

func (u *memUpload) State() []byte { return []byte(u.key) }

// WritePart reads exactly p.Size bytes from r, checking ctx between reads,
// and stores them as part p.Number, replacing an earlier write.
func (u *memUpload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case p.Number < 0 || p.Offset < 0 || p.Size < 0:
		return pipeline.Permanent(fmt.Errorf("memory sink: %q: invalid part %+v", u.name, p))
	case p.Size == 0 && !(p.Last && p.Number == 0):
		// Only an empty file has an empty part, and it is its only part.
		return pipeline.Permanent(fmt.Errorf("memory sink: %q: part %d is empty but is not the only part of an empty file", u.name, p.Number))
	}
	data := make([]byte, p.Size)
	for off := 0; off < len(data); {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(data[off:min(len(data), off+256<<10)])
		off += n
		if err == io.EOF && off < len(data) {
			return fmt.Errorf("memory sink: %q: part %d: reader ended after %d of %d bytes: %w", u.name, p.Number, off, p.Size, io.ErrUnexpectedEOF)
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("memory sink: %q: part %d: reading: %w", u.name, p.Number, err)
		}
	}
	u.sink.mu.Lock()
	defer u.sink.mu.Unlock()
	if u.done != "" {
		return pipeline.Permanent(fmt.Errorf("memory sink: %q: WritePart after the upload was %s", u.name, u.done))
	}
	u.parts[p.Number] = memPart{p, data}
	u.sink.writes++
	return nil
}

// Commit assembles the parts and stores the file under f.Name.
func (u *memUpload) Commit(ctx context.Context, f pipeline.File) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := u.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.done != "" {
		return pipeline.Permanent(fmt.Errorf("memory sink: %q: Commit after the upload was %s", u.name, u.done))
	}
	numbers := make([]int, 0, len(u.parts))
	for n := range u.parts {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	var content []byte
	for i, n := range numbers {
		p := u.parts[n]
		switch {
		case n != i:
			return fmt.Errorf("memory sink: committing %q: part %d is missing", u.name, i)
		case p.p.Offset != int64(len(content)):
			return fmt.Errorf("memory sink: committing %q: part %d is at offset %d, want %d", u.name, n, p.p.Offset, len(content))
		case p.p.Last != (i == len(numbers)-1):
			if p.p.Last {
				return fmt.Errorf("memory sink: committing %q: part %d follows the last part %d", u.name, numbers[i+1], n)
			}
			return fmt.Errorf("memory sink: committing %q: no part after part %d is marked last", u.name, n)
		}
		content = append(content, p.data...)
	}
	if len(numbers) == 0 {
		return fmt.Errorf("memory sink: committing %q: no parts were written (an empty file has one empty part)", u.name)
	}
	if f.Size >= 0 && f.Size != int64(len(content)) {
		return pipeline.Permanent(fmt.Errorf("memory sink: committing %q: the parts hold %d bytes, Commit says %d", u.name, len(content), f.Size))
	}
	if sum := SHA256Hex(content); f.SHA256 != "" && f.SHA256 != sum {
		return pipeline.Permanent(fmt.Errorf("memory sink: committing %q: the parts have sha256 %s, Commit says %s", u.name, sum, f.SHA256))
	}
	name := u.name
	if f.Name != "" {
		name = f.Name
	}
	if content == nil {
		content = []byte{}
	}
	s.files[name] = content
	s.commits++
	s.committed[u.key] = true
	u.done = "committed"
	u.parts = nil
	if s.uploads[u.key] == u {
		delete(s.uploads, u.key)
	}
	return nil
}

// Abort drops the upload's parts. Aborting again, or after Commit, does
// nothing and returns nil.
func (u *memUpload) Abort(ctx context.Context, cause error) error {
	s := u.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.done == "" {
		u.done = "aborted"
		u.parts = nil
	}
	if s.uploads[u.key] == u {
		delete(s.uploads, u.key)
	}
	return nil
}

// Package-level memory connectors built through a registry, by name, so that
// a test can reach what a flow file built.
var memoryNamed = struct {
	sync.Mutex
	sinks   map[string]*MemorySink
	sources map[string]*MemorySource
}{sinks: map[string]*MemorySink{}, sources: map[string]*MemorySource{}}

// MemorySinkNamed returns the memory sink stored under name by the "memory"
// sink connector, creating it if there is none yet. Use a name unique to the
// test: the sinks live as long as the test binary.
func MemorySinkNamed(name string) *MemorySink {
	memoryNamed.Lock()
	defer memoryNamed.Unlock()
	s, ok := memoryNamed.sinks[name]
	if !ok {
		s = NewMemorySink()
		memoryNamed.sinks[name] = s
	}
	return s
}

// MemorySourceNamed returns the source the "memory" source connector built
// last with the given name, or nil.
func MemorySourceNamed(name string) *MemorySource {
	memoryNamed.Lock()
	defer memoryNamed.Unlock()
	return memoryNamed.sources[name]
}

// Register adds the "memory" source and sink to r.
//
// Source fields: files (stringmap, name -> content), finite (bool, default
// true), name (string: if set, MemorySourceNamed returns the source).
// Sink fields: name (string, default "default": the sink is MemorySinkNamed
// of it, so every flow naming it writes to the same files), part_size (size)
// and concurrency (int), its part plan when set.
func Register(r *pipeline.Registry) error {
	err := r.RegisterSource(pipeline.Spec{
		Name:    "memory",
		Summary: "Offers files held in memory, for tests.",
		Options: memorySourceOptions{},
		Fields: []pipeline.Field{
			{Name: "files", Type: pipeline.TypeStringMap, Doc: "The files to offer: name -> content."},
			{Name: "finite", Type: pipeline.TypeBool, Default: true, Doc: "End the flow (io.EOF) once every file was offered; if false, wait for more."},
			{Name: "name", Type: pipeline.TypeString, Doc: "If set, tests reach the source with testkit.MemorySourceNamed."},
		},
	}, func(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
		opts, err := pipeline.Decode[memorySourceOptions](c)
		if err != nil {
			return nil, err
		}
		files := map[string][]byte{}
		for name, content := range opts.Files {
			files[name] = []byte(content)
		}
		src := NewMemorySource(files, opts.Finite)
		if opts.Name != "" {
			memoryNamed.Lock()
			memoryNamed.sources[opts.Name] = src
			memoryNamed.Unlock()
		}
		return src, nil
	})
	if err != nil {
		return err
	}
	return r.RegisterSink(pipeline.Spec{
		Name:    "memory",
		Summary: "Keeps files in memory, for tests.",
		Options: memorySinkOptions{},
		Fields: []pipeline.Field{
			{Name: "name", Type: pipeline.TypeString, Default: "default", Doc: "Which in-memory store to write to; tests read it with testkit.MemorySinkNamed."},
			{Name: "part_size", Type: pipeline.TypeSize, Doc: "Preferred part size; default one bus chunk per part."},
			{Name: "concurrency", Type: pipeline.TypeInt, Doc: "How many parts are written at once; default the sink's parallelism."},
		},
	}, func(ctx context.Context, c pipeline.Config) (pipeline.Sink, error) {
		opts, err := pipeline.Decode[memorySinkOptions](c)
		if err != nil {
			return nil, err
		}
		if opts.PartSize < 0 || opts.Concurrency < 0 {
			return nil, errors.New("memory sink: part_size and concurrency must not be negative")
		}
		s := MemorySinkNamed(opts.Name)
		if opts.PartSize != 0 || opts.Concurrency != 0 {
			s.SetPlan(pipeline.PartPlan{PartSize: opts.PartSize, Concurrency: opts.Concurrency})
		}
		return s, nil
	})
}

// memorySourceOptions and memorySinkOptions are what Register's specs
// decode into.
type (
	memorySourceOptions struct {
		Files  map[string]string `config:"files"`
		Finite bool              `config:"finite"`
		Name   string            `config:"name"`
	}
	memorySinkOptions struct {
		Name        string `config:"name"`
		PartSize    int64  `config:"part_size"`
		Concurrency int    `config:"concurrency"`
	}
)

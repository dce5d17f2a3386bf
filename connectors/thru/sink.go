package thru

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/mftflow/mftflow/pipeline"
)

// SinkConfig configures a Sink.
type SinkConfig struct {
	// Client reaches the site: the Connector API fields for ModeDropOff,
	// APIKey or BearerToken for ModeContent.
	Client ClientConfig
	// Mode is ModeDropOff (default) or ModeContent.
	Mode string
	// EndpointPath is the Content API target (ModeContent).
	EndpointPath string
	// PartSize is the chunk size; 0 uses DefaultPartSize. In ModeContent it
	// is lowered to fit the preflight's maxChunkSize.
	PartSize int64
	// SimpleThreshold: in ModeContent, files of known size below it use one
	// simple upload (one request, where a session takes three); 0 or
	// negative never does, which is the default: a runner killed between a
	// simple upload and its record sends the file again after a restart,
	// and the site then holds it twice (see AdvisedSimpleThreshold).
	SimpleThreshold int64
}

// Sink delivers files to Thru.
//
// ModeDropOff: Open reserves a File Code unless the file carries one in
// attribute AttrFileCode (a response to a picked-up file, which Thru links to
// it) and sends chunk zero with the size, so a file whose size is unknown
// waits for the whole file (ManifestFirst); each part is one content chunk
// (part n is chunk n+1), sent concurrently; Commit sends EOF. The resume
// state keeps the File Code, so a resumed upload sends only the chunks the
// engine has not recorded as written.
//
// ModeContent: Open checks the endpoint path locally (a malformed one is a
// permanent error before any call) and always preflights; a refusal is a
// permanent error with the site's reason. A file of known size below the
// simple threshold goes up in one simple upload (one part; it is visible
// once that part is written, not at Commit); others in an upload session
// whose chunks are PUT concurrently: each part is cut into chunks within
// part_size and maxChunkSize (see openContent), numbered by offset.
// Commit commits the session; Abort aborts it (status 0 with the cause, 1
// when cancelled). A resumed upload asks the site which chunks it holds
// (GET) and sends only the others.
type Sink struct {
	cl   *Client
	cfg  SinkConfig
	path EndpointPath
}

// NewSink checks cfg and returns a Sink.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeDropOff
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = DefaultPartSize
	}
	s := &Sink{cfg: cfg}
	switch cfg.Mode {
	case ModeDropOff:
		if cfg.Client.FlowCode == "" || cfg.Client.Cipher == nil {
			return nil, errors.New("thru sink: mode dropoff needs flow_code, aes_key and the header keys")
		}
	case ModeContent:
		p, err := ParseEndpointPath(cfg.EndpointPath)
		if err != nil {
			return nil, fmt.Errorf("thru sink: endpoint_path: %w", err)
		}
		if cfg.Client.APIKey == "" && cfg.Client.BearerToken == "" {
			return nil, errors.New("thru sink: mode content needs api_key or bearer_token")
		}
		s.path = p
	default:
		return nil, fmt.Errorf("thru sink: unknown mode %q (known: %s, %s)", cfg.Mode, ModeDropOff, ModeContent)
	}
	cl, err := NewClient(cfg.Client)
	if err != nil {
		return nil, err
	}
	s.cl = cl
	return s, nil
}

// ManifestFirst asks for the whole file only in drop-off mode and only when
// its size is unknown: chunk zero announces the size before any content.
func (s *Sink) ManifestFirst(f pipeline.File) bool {
	return s.cfg.Mode == ModeDropOff && f.Size < 0
}

// Close does nothing; the sink holds no resources between uploads.
func (s *Sink) Close() error { return nil }

// sinkState is the resume token.
type sinkState struct {
	Mode      string `json:"mode"`
	FileCode  string `json:"fileCode,omitempty"`
	ZeroSent  bool   `json:"zeroSent,omitempty"`
	Announced int64  `json:"announced,omitempty"` // size sent in chunk zero
	Session   string `json:"session,omitempty"`
	Simple    bool   `json:"simple,omitempty"`
	Done      bool   `json:"done,omitempty"` // simple upload finished
}

// Open starts or resumes one file.
func (s *Sink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if err := pipeline.CheckUTF8Name(f.Name, "Thru"); err != nil {
		return nil, err
	}
	var st sinkState
	if len(resume) > 0 {
		if err := json.Unmarshal(resume, &st); err != nil || st.Mode != s.cfg.Mode {
			st = sinkState{} // unusable: start afresh
		}
	}
	st.Mode = s.cfg.Mode
	if s.cfg.Mode == ModeDropOff {
		return s.openDropOff(ctx, f, st)
	}
	return s.openContent(ctx, f, st)
}

func (s *Sink) openDropOff(ctx context.Context, f pipeline.File, st sinkState) (pipeline.Upload, error) {
	if f.Size < 0 {
		return nil, pipeline.Permanent(fmt.Errorf("thru sink: file %q: drop-off needs the size at Open", f.Name))
	}
	if st.FileCode == "" {
		st.FileCode = f.Attr(AttrFileCode)
		if st.FileCode == "" {
			code, err := s.cl.ReserveFileCode(ctx)
			if err != nil {
				return nil, err
			}
			st.FileCode = code
		}
	}
	if !st.ZeroSent || st.Announced != f.Size {
		if err := s.cl.SendChunkZero(ctx, st.FileCode, f.Name, f.Size); err != nil {
			return nil, err
		}
	}
	st.Announced, st.ZeroSent = f.Size, true
	return &upload{s: s, f: f, st: st}, nil
}

func (s *Sink) metadata(f pipeline.File) FileMetadata {
	dir, base := path.Split(f.Name)
	m := FileMetadata{EndpointPath: s.path.String(), Attributes: FileAttributes{FileName: base}}
	if !f.ModTime.IsZero() {
		m.Attributes.FileTime = f.ModTime.UTC().Format(FileTimeLayout)
	}
	if dir = strings.Trim(dir, "/"); dir != "" {
		m.Attributes.Path = `\` + strings.ReplaceAll(dir, "/", `\`)
	}
	return m
}

func (s *Sink) openContent(ctx context.Context, f pipeline.File, st sinkState) (pipeline.Upload, error) {
	meta := s.metadata(f)
	pf, err := s.cl.Preflight(ctx, meta)
	if err != nil {
		return nil, err
	}
	if pf.Refused() {
		return nil, pipeline.Permanent(fmt.Errorf("thru sink: file %q: the endpoint %s refuses it: %s", f.Name, s.path, pf.Reason))
	}
	// Session chunks are the largest power of two within part_size and the
	// site's maximum: the engine's parts are whole bus chunks (1 MiB by
	// default), so such a chunk size divides them, and WritePart cuts each
	// part into chunks numbered by offset.
	limit := s.cfg.PartSize
	if pf.MaxChunkSize > 0 {
		limit = min(limit, pf.MaxChunkSize)
	}
	part := int64(1)
	for part*2 <= limit {
		part *= 2
	}
	u := &upload{s: s, f: f, st: st, meta: meta, part: part, have: map[int]int64{}}
	if st.Session == "" && !st.Simple {
		st.Simple = f.Size >= 0 && s.cfg.SimpleThreshold > 0 && f.Size < s.cfg.SimpleThreshold
	}
	if st.Simple {
		u.st = st
		return u, nil
	}
	if st.Session != "" {
		ss, err := s.cl.SessionStatus(ctx, st.Session)
		switch {
		case err == nil && ss.State != SessionAborted:
			for _, c := range ss.Chunks {
				u.have[c.SequenceNumber] = c.Size
			}
			u.committed = ss.State == SessionCommitted
		case err == nil || errors.Is(err, ErrNotFound):
			st.Session = "" // gone: start a new one
		default:
			return nil, err
		}
	}
	if st.Session == "" {
		id, err := s.cl.CreateSession(ctx, &meta)
		if err != nil {
			return nil, err
		}
		st.Session = id
	}
	u.st = st
	return u, nil
}

type upload struct {
	s    *Sink
	f    pipeline.File
	meta FileMetadata
	part int64

	mu        sync.Mutex
	st        sinkState
	have      map[int]int64 // content session: chunks the site held at Open
	committed bool
}

func (u *upload) Plan() pipeline.PartPlan {
	switch {
	case u.s.cfg.Mode == ModeDropOff:
		return pipeline.PartPlan{PartSize: u.s.cfg.PartSize}
	case u.st.Simple:
		// One part: the whole file goes in one request.
		return pipeline.PartPlan{PartSize: max(u.f.Size, 1), Concurrency: 1}
	}
	return pipeline.PartPlan{PartSize: u.part}
}

func (u *upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	switch {
	case u.s.cfg.Mode == ModeDropOff:
		if p.Size == 0 {
			return nil // an empty file has no content chunks
		}
		return u.s.cl.SendChunk(ctx, st.FileCode, p.Number+1, p.Size, rewindable(r, 0, p.Size))
	case st.Simple:
		if st.Done {
			return nil
		}
		res, err := u.s.cl.UploadSimple(ctx, u.meta, p.Size, rewindable(r, 0, p.Size))
		if err != nil {
			return err
		}
		u.mu.Lock()
		u.st.Done, u.st.FileCode = true, res.FileCode
		u.mu.Unlock()
		return nil
	}
	if p.Size == 0 {
		return nil
	}
	if p.Offset%u.part != 0 {
		return pipeline.Permanent(fmt.Errorf("thru sink: part %d of %q starts at byte %d, not a multiple of the session chunk size %d: use a bus chunk size that is a power of two", p.Number, u.f.Name, p.Offset, u.part))
	}
	left := p.Size
	for seq := int(p.Offset/u.part) + 1; left > 0; seq++ {
		n := min(left, u.part)
		chunk := rewindable(r, p.Size-left, n)
		u.mu.Lock()
		held, ok := u.have[seq]
		if ok {
			// The site had this chunk when the upload resumed: sending it
			// again would change nothing. Only the first write is skipped.
			delete(u.have, seq)
		}
		u.mu.Unlock()
		if ok && held == n {
			if _, err := io.CopyN(io.Discard, chunk, n); err != nil {
				return err
			}
		} else if err := u.s.cl.PutChunk(ctx, st.Session, seq, n, chunk); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// rewindable returns the bytes [off, off+n) of a part read from r, without
// a copy and able to be sent again (the client retries a chunk alone) when r
// holds its bytes as slices; else r, from which the client reads the next n
// bytes (and which it sends again only if r seeks).
func rewindable(r io.Reader, off, n int64) io.Reader {
	if sl, ok := pipeline.SlicesOf(r, off, n); ok {
		return sl
	}
	return r
}

// Location names what the site holds the file by: "thru:file-code CODE"
// for a drop-off, "thru:session ID" for an upload session, "thru:simple"
// for a simple upload (the site's answer names no id); it implements
// pipeline.Locator.
func (u *upload) Location() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.s.cfg.Mode == ModeDropOff:
		return "thru:file-code " + u.st.FileCode
	case u.st.Simple:
		return "thru:simple"
	}
	return "thru:session " + u.st.Session
}

func (u *upload) Commit(ctx context.Context, f pipeline.File) error {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	switch {
	case u.s.cfg.Mode == ModeDropOff:
		if f.Size >= 0 && f.Size != st.Announced {
			if err := u.s.cl.SendChunkZero(ctx, st.FileCode, f.Name, f.Size); err != nil {
				return err
			}
		}
		return u.s.cl.SendEOF(ctx, st.FileCode)
	case st.Simple:
		if !st.Done {
			return pipeline.Permanent(fmt.Errorf("thru sink: file %q: commit before its simple upload finished", f.Name))
		}
		return nil
	}
	if u.committed {
		return nil
	}
	_, err := u.s.cl.CommitSession(ctx, st.Session)
	if err != nil {
		// A commit that succeeded but whose answer was lost: the site knows.
		if ss, serr := u.s.cl.SessionStatus(ctx, st.Session); serr == nil && ss.State == SessionCommitted {
			return nil
		}
	}
	return err
}

func (u *upload) Abort(ctx context.Context, cause error) error {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	if u.s.cfg.Mode == ModeDropOff || st.Simple || st.Session == "" {
		// Drop-off has no abort call: without EOF the site never assembles
		// the file. A simple upload is all or nothing.
		return nil
	}
	status, msg := AbortCancelled, "cancelled"
	if cause != nil {
		status, msg = AbortError, cause.Error()
	}
	err := u.s.cl.AbortSession(ctx, st.Session, status, msg)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (u *upload) State() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, _ := json.Marshal(u.st)
	return b
}

var (
	_ pipeline.Sink          = (*Sink)(nil)
	_ pipeline.ManifestFirst = (*Sink)(nil)
)

package thrusim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/internal/discard"
)

type dropoff struct {
	code   string
	flow   string
	meta   *thru.ChunkZero
	chunks map[int]blob
	// eof lets one EOF at a time assemble the file; sealed (under
	// Server.mu) refuses chunks meanwhile, as the file is read from them.
	eof    sync.Mutex
	sealed bool
	done   bool
}

type session struct {
	id     string
	meta   *thru.FileMetadata
	chunks map[int]blob
	state  string
	abort  *thru.AbortRequest
	result *thru.UploadResult
	// commit and sealed: as dropoff's eof and sealed.
	commit sync.Mutex
	sealed bool
}

func (ss *session) statusLocked() thru.SessionStatus {
	st := thru.SessionStatus{TransferID: ss.id, State: ss.state, Chunks: []thru.ChunkMeta{}}
	for _, n := range sortedKeys(ss.chunks) {
		st.Chunks = append(st.Chunks, thru.ChunkMeta{SequenceNumber: n, Size: ss.chunks[n].size})
	}
	if ss.meta != nil {
		m := *ss.meta
		st.Metadata = &m
	}
	return st
}

var errCut = errors.New("connection cut")

// readBody reads at most limit bytes of r; more is an error. With a reset
// fault it reads about half of expect bytes and cuts the connection.
func (req *request) readBody(r io.Reader, limit, expect int64) ([]byte, error) {
	if req.reset {
		_, _ = io.CopyN(io.Discard, r, expect/2)
		req.cutConnection()
		return nil, errCut
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// cutIfReset cuts the connection of a call without content that drew a
// reset fault.
func (req *request) cutIfReset() bool {
	if req.reset {
		req.cutConnection()
	}
	return req.reset
}

func (s *Server) pickup(req *request, flowCode string) {
	f, ok := s.authConnector(req, flowCode)
	if !ok {
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	if len(f.queue) == 0 || now.Before(f.nextAvail) {
		s.mu.Unlock()
		req.WriteHeader(http.StatusNoContent)
		return
	}
	rec := f.queue[0]
	f.queue = f.queue[1:]
	f.nextAvail = now.Add(f.delay)
	content := rec.content
	rec.content, rec.picked = blob{}, true
	s.mu.Unlock()
	defer content.remove() // handed out: the site keeps no copy
	file, err := os.Open(content.path)
	if err != nil {
		req.fail(http.StatusInternalServerError, "Pickup of file %s failed: the physical file is missing: %v", rec.code, err)
		return
	}
	defer discard.Close(file)
	h := req.Header()
	h.Set("Content-Disposition", thru.PickupDisposition(rec.code, rec.name))
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(content.size, 10))
	req.WriteHeader(http.StatusOK)
	if req.reset {
		_, _ = io.CopyN(req, file, content.size/2)
		req.cutConnection()
		return
	}
	_, _ = io.Copy(req, file)
}

func (s *Server) reserve(req *request, flowCode string) {
	f, ok := s.authConnector(req, flowCode)
	if !ok || req.cutIfReset() {
		return
	}
	s.mu.Lock()
	rec := &fileRec{code: s.newCodeLocked(), flow: f.cfg.Code, origin: "reserved", size: -1}
	s.files[rec.code] = rec
	s.mu.Unlock()
	req.Header().Set("Content-Type", "text/plain; charset=utf-8")
	req.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(req, rec.code)
}

// routeDropOff reads the part header of a drop-off POST to tell chunk zero,
// content chunks and EOF apart.
func (s *Server) routeDropOff(req *request, flowCode string) func() {
	req.kind = KindDropOff
	mr, err := req.r.MultipartReader()
	if err != nil {
		return func() { s.dropOffError(req, flowCode, "the request is not multipart/form-data: %v", err) }
	}
	part, err := mr.NextPart()
	if err != nil {
		return func() { s.dropOffError(req, flowCode, "reading the form part: %v", err) }
	}
	_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	if err != nil {
		return func() { s.dropOffError(req, flowCode, "bad Content-Disposition: %v", err) }
	}
	kind, code, n, err := thru.ParseDropOffPartName(params["filename"])
	if err != nil {
		return func() { s.dropOffError(req, flowCode, "%v", err) }
	}
	size := int64(-1)
	if v, ok := params["size"]; ok {
		if size, err = strconv.ParseInt(v, 10, 64); err != nil || size < 0 {
			return func() { s.dropOffError(req, flowCode, "bad size %q in Content-Disposition", v) }
		}
	}
	switch kind {
	case thru.PartChunkZero:
		req.kind = KindChunkZero
	case thru.PartContent:
		req.kind = KindChunk
		req.call.Chunk = n
	default:
		req.kind = KindEOF
	}
	return func() { s.dropOff(req, flowCode, kind, code, n, size, part) }
}

func (s *Server) dropOffError(req *request, flowCode, format string, args ...any) {
	if _, ok := s.authConnector(req, flowCode); ok {
		req.fail(http.StatusInternalServerError, "Drop-off chunk failed: "+format, args...)
	}
}

func (s *Server) dropOff(req *request, flowCode string, kind thru.DropOffPartKind, code string, n int, size int64, part *multipart.Part) {
	f, ok := s.authConnector(req, flowCode)
	if !ok {
		return
	}
	fail := func(format string, args ...any) {
		req.fail(http.StatusInternalServerError, "Drop-off of file "+code+" failed: "+format, args...)
	}
	s.mu.Lock()
	_, known := s.files[code]
	d := s.dropoffs[code]
	hasMeta := d != nil && d.meta != nil
	done := d != nil && (d.done || d.sealed)
	s.mu.Unlock()
	if !known {
		fail("unknown File Code; reserve one first or use the File Code of a picked-up file")
		return
	}
	if size < 0 && kind != thru.PartEOF {
		fail("the part's Content-Disposition has no size")
		return
	}
	switch kind {
	case thru.PartChunkZero:
		b, err := req.readBody(part, 64<<10, size)
		if err == errCut {
			return
		}
		var meta thru.ChunkZero
		switch {
		case err != nil:
			fail("chunk zero: %v", err)
		case int64(len(b)) != size:
			fail("chunk zero: size=%d in Content-Disposition but %d bytes sent", size, len(b))
		case json.Unmarshal(b, &meta) != nil:
			fail("chunk zero is not JSON {\"fileSize\", \"fileName\", \"TargetSiteUrl\"}")
		case !strings.HasPrefix(meta.FileName, code+"-") || len(meta.FileName) == len(code)+1:
			fail("chunk zero: fileName %q must be %s-<name> (a dash after the File Code)", meta.FileName, code)
		case meta.FileSize < 0:
			fail("chunk zero: fileSize %d is negative", meta.FileSize)
		case done:
			fail("the file is already complete (EOF received)")
		default:
			s.mu.Lock()
			if d == nil {
				d = &dropoff{code: code, flow: f.cfg.Code, chunks: map[int]blob{}}
				s.dropoffs[code] = d
			}
			d.meta = &meta
			s.mu.Unlock()
			req.WriteHeader(http.StatusOK)
		}
	case thru.PartContent:
		if !hasMeta {
			fail("chunk %d arrived before chunk zero", n)
			return
		}
		b, err := req.spoolBody(s, part, s.cfg.DropOffMaxChunkSize, size)
		switch {
		case err == errCut:
		case err != nil:
			fail("chunk %d: %v", n, err)
		case b.size != size:
			b.remove()
			fail("chunk %d: size=%d in Content-Disposition but %d bytes sent", n, size, b.size)
		case b.size == 0:
			b.remove()
			fail("chunk %d is empty", n)
		default:
			s.mu.Lock()
			done = d.done || d.sealed
			old := d.chunks[n]
			if !done {
				d.chunks[n] = b // sent again: the last copy counts
			}
			s.mu.Unlock()
			if done {
				b.remove()
				fail("chunk %d arrived after EOF", n)
				return
			}
			old.remove()
			req.WriteHeader(http.StatusOK)
		}
	case thru.PartEOF:
		if req.cutIfReset() {
			return
		}
		if !hasMeta {
			fail("EOF arrived before chunk zero")
			return
		}
		s.endDropOff(req, d, fail)
	}
}

// endDropOff assembles a drop-off at EOF. The file is read (for its
// sha256) outside Server.mu, with its chunks sealed.
func (s *Server) endDropOff(req *request, d *dropoff, fail func(string, ...any)) {
	d.eof.Lock()
	defer d.eof.Unlock()
	s.mu.Lock()
	if d.done {
		s.mu.Unlock()
		req.WriteHeader(http.StatusOK) // EOF again: the file is already there
		return
	}
	parts, size, err := assemble(d.chunks, d.meta.FileSize)
	d.sealed = err == nil
	s.mu.Unlock()
	if err != nil {
		fail("EOF: %v", err)
		return
	}
	sum, err := hashParts(parts)
	s.mu.Lock()
	defer s.mu.Unlock()
	d.sealed = false
	if err != nil {
		fail("EOF: reading the chunks: %v", err)
		return
	}
	d.done, d.chunks = true, nil
	name := strings.TrimPrefix(d.meta.FileName, d.code+"-")
	if rec := s.files[d.code]; rec.origin == "reserved" {
		rec.name, rec.size, rec.origin = name, size, "dropoff"
	}
	s.deliverLocked(Delivery{Via: "dropoff", Flow: d.flow, FileCode: d.code, Name: name,
		Size: size, SHA256: sum, parts: parts})
	req.WriteHeader(http.StatusOK)
}

// deliverLocked records d, whose Size, SHA256 and parts are set.
func (s *Server) deliverLocked(d Delivery) {
	d.Time = s.cfg.Now()
	s.deliveries = append(s.deliveries, d)
}

func (s *Server) fileMetadata(req *request, code string) {
	caller, ok := s.authConnector(req, "")
	if !ok || req.cutIfReset() {
		return
	}
	s.mu.Lock()
	rec, ok := s.files[code]
	ok = ok && rec.flow == caller.cfg.Code // another flow's file is none of its business
	var info thru.FileInfo
	if ok {
		f := s.flows[rec.flow]
		info = thru.FileInfo{FileCode: rec.code, FileName: rec.name, FileSize: rec.size, FlowCode: rec.flow,
			FlowName: f.cfg.Name, FileStatus: -1, FileProcessingType: -1, Source: f.cfg.Sender}
		if rec.origin == "dropoff" {
			info.RelatedFileCode, info.RelatedFileName = rec.code, rec.name
		}
	}
	s.mu.Unlock()
	if !ok {
		req.fail(http.StatusInternalServerError, "File %s not found", code)
		return
	}
	req.json(http.StatusOK, info)
}

func (s *Server) flowOutcome(req *request) {
	caller, ok := s.authConnector(req, "")
	if !ok {
		return
	}
	b, err := req.readBody(req.r.Body, 1<<20, req.r.ContentLength)
	if err == errCut {
		return
	}
	var o thru.FlowOutcome
	if err != nil || json.Unmarshal(b, &o) != nil {
		req.fail(http.StatusInternalServerError, "Flow outcome: the body is not the outcome JSON")
		return
	}
	if o.FlowOutcome < thru.OutcomePassed || o.FlowOutcome > thru.OutcomeMixed {
		req.fail(http.StatusInternalServerError, "Flow outcome: flowOutcome %d is not 1 (passed), 2 (failed) or 3 (mixed)", o.FlowOutcome)
		return
	}
	s.mu.Lock()
	rec, known := s.files[o.FileCode]
	known = known && rec.flow == caller.cfg.Code
	if known {
		s.outcomes = append(s.outcomes, o)
	}
	s.mu.Unlock()
	if !known {
		req.fail(http.StatusInternalServerError, "Flow outcome: File %s not found", o.FileCode)
		return
	}
	req.WriteHeader(http.StatusOK)
}

// readMetadata reads a JSON FileMetadata and checks its endpoint path.
func (s *Server) readMetadata(req *request, r io.Reader, expect int64) (*thru.FileMetadata, *EndpointConfig, bool) {
	b, err := req.readBody(r, 64<<10, expect)
	if err == errCut {
		return nil, nil, false
	}
	var m thru.FileMetadata
	if err != nil || json.Unmarshal(b, &m) != nil {
		req.fail(http.StatusBadRequest, "File metadata is not JSON {\"endpointPath\", \"attributes\": {\"fileName\", ...}}")
		return nil, nil, false
	}
	ep, ok := s.endpoint(req, m.EndpointPath)
	if !ok {
		return nil, nil, false
	}
	return &m, ep, true
}

// rule returns why an endpoint refuses a file ("" if it accepts it); size -1
// skips the size rule.
func rule(ep *EndpointConfig, name string, size int64) string {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return fmt.Sprintf("file name %q is not a valid base name", name)
	}
	if ep.NamePattern != "" {
		if ok, _ := path.Match(ep.NamePattern, name); !ok {
			return fmt.Sprintf("file name %q does not match the endpoint's pattern %q", name, ep.NamePattern)
		}
	}
	if ep.MaxFileSize > 0 && size > ep.MaxFileSize {
		return fmt.Sprintf("file size %d is above the endpoint's limit of %d bytes", size, ep.MaxFileSize)
	}
	return ""
}

func (s *Server) preflight(req *request) {
	if !s.authContent(req) {
		return
	}
	m, ep, ok := s.readMetadata(req, req.r.Body, req.r.ContentLength)
	if !ok {
		return
	}
	base := "http://" + req.r.Host
	reason := rule(ep, m.Attributes.FileName, -1)
	accepted := reason == ""
	req.json(http.StatusOK, thru.Preflight{Accepted: &accepted, Reason: reason, MaxChunkSize: s.cfg.MaxChunkSize,
		SimpleUploadURL: base + thru.PathContent, ChunkedUploadURL: base + thru.PathUploadSessions})
}

// twoParts returns the first part's bytes and the second part of a Content
// API multipart request.
func (s *Server) twoParts(req *request) (*multipart.Reader, *multipart.Part, bool) {
	mr, err := req.r.MultipartReader()
	if err != nil {
		req.fail(http.StatusBadRequest, "The request is not multipart/form-data: %v", err)
		return nil, nil, false
	}
	p, err := mr.NextPart()
	if err != nil {
		req.fail(http.StatusBadRequest, "Reading the first (metadata) part: %v", err)
		return nil, nil, false
	}
	return mr, p, true
}

func secondPart(req *request, mr *multipart.Reader) (*multipart.Part, bool) {
	p, err := mr.NextPart()
	if err != nil {
		req.fail(http.StatusBadRequest, "Reading the second (content) part: %v", err)
		return nil, false
	}
	return p, true
}

func (s *Server) simpleUpload(req *request) {
	if !s.authContent(req) {
		return
	}
	mr, p, ok := s.twoParts(req)
	if !ok {
		return
	}
	saved := req.reset
	req.reset = false // cut the content, not the metadata
	m, ep, ok := s.readMetadata(req, p, 0)
	req.reset = saved
	if !ok {
		return
	}
	if reason := rule(ep, m.Attributes.FileName, -1); reason != "" {
		req.fail(http.StatusBadRequest, "Upload refused by the endpoint's rules: %s", reason)
		return
	}
	cp, ok := secondPart(req, mr)
	if !ok {
		return
	}
	content, err := req.spoolBody(s, cp, thru.SimpleUploadLimit, req.r.ContentLength)
	if err == errCut {
		return
	}
	if err != nil {
		req.fail(http.StatusRequestEntityTooLarge, "Simple upload: %v; use an upload session", err)
		return
	}
	if reason := rule(ep, m.Attributes.FileName, content.size); reason != "" {
		content.remove()
		req.fail(http.StatusBadRequest, "Upload refused by the endpoint's rules: %s", reason)
		return
	}
	parts := []blob{content}
	sum, err := hashParts(parts)
	if err != nil {
		content.remove()
		req.fail(http.StatusInternalServerError, "Simple upload: reading the file: %v", err)
		return
	}
	s.mu.Lock()
	res := s.deliverContentLocked(m, parts, content.size, sum)
	s.mu.Unlock()
	req.json(http.StatusOK, res)
}

func (s *Server) deliverContentLocked(m *thru.FileMetadata, parts []blob, size int64, sum string) *thru.UploadResult {
	p, _ := thru.ParseEndpointPath(m.EndpointPath)
	code := s.newCodeLocked()
	s.files[code] = &fileRec{code: code, flow: p.FlowCode, name: m.Attributes.FileName, size: size, origin: "content"}
	s.deliverLocked(Delivery{Via: "content", Flow: p.FlowCode, FileCode: code, EndpointPath: m.EndpointPath,
		Name: m.Attributes.FileName, Path: m.Attributes.Path, Size: size, SHA256: sum, parts: parts})
	return &thru.UploadResult{FileCode: code, Size: size}
}

func (s *Server) createSession(req *request) {
	if !s.authContent(req) {
		return
	}
	var meta *thru.FileMetadata
	if req.r.ContentLength != 0 {
		m, _, ok := s.readMetadata(req, req.r.Body, req.r.ContentLength)
		if !ok {
			return
		}
		meta = m
	} else if req.cutIfReset() {
		return
	}
	ss := &session{id: newSessionID(), meta: meta, chunks: map[int]blob{}, state: thru.SessionOpen}
	s.mu.Lock()
	s.sessions[ss.id] = ss
	st := ss.statusLocked()
	s.mu.Unlock()
	req.Header().Set(thru.TransferIDHeader, ss.id)
	req.json(http.StatusCreated, st)
}

// openSession finds session id and checks it is open; it answers errors itself.
func (s *Server) openSession(req *request, id string, wantOpen bool) (*session, bool) {
	s.mu.Lock()
	ss, ok := s.sessions[id]
	state := ""
	if ok {
		state = ss.state
	}
	s.mu.Unlock()
	if !ok {
		req.fail(http.StatusNotFound, "Upload session %s does not exist", id)
		return nil, false
	}
	if wantOpen && state != thru.SessionOpen {
		req.fail(http.StatusBadRequest, "Upload session %s is %s", id, state)
		return nil, false
	}
	return ss, true
}

func (s *Server) patchSession(req *request, id string) {
	if !s.authContent(req) {
		return
	}
	ss, ok := s.openSession(req, id, true)
	if !ok {
		return
	}
	m, _, ok := s.readMetadata(req, req.r.Body, req.r.ContentLength)
	if !ok {
		return
	}
	s.mu.Lock()
	ss.meta = m
	st := ss.statusLocked()
	s.mu.Unlock()
	req.json(http.StatusOK, st)
}

func (s *Server) putChunk(req *request, id string) {
	if !s.authContent(req) {
		return
	}
	ss, ok := s.openSession(req, id, true)
	if !ok {
		return
	}
	mr, p, ok := s.twoParts(req)
	if !ok {
		return
	}
	var cm thru.ChunkMeta
	mb, err := io.ReadAll(io.LimitReader(p, 4096))
	if err != nil || json.Unmarshal(mb, &cm) != nil {
		req.fail(http.StatusBadRequest, "Chunk metadata is not JSON {\"sequenceNumber\", \"size\"}")
		return
	}
	req.call.Chunk = cm.SequenceNumber
	if cm.SequenceNumber < 1 {
		req.fail(http.StatusBadRequest, "Chunk sequenceNumber %d: chunks are numbered from 1", cm.SequenceNumber)
		return
	}
	if cm.Size > s.cfg.MaxChunkSize {
		req.fail(http.StatusRequestEntityTooLarge, "Chunk %d of %d bytes is above the maximum chunk size of %d", cm.SequenceNumber, cm.Size, s.cfg.MaxChunkSize)
		return
	}
	cp, ok := secondPart(req, mr)
	if !ok {
		return
	}
	b, err := req.spoolBody(s, cp, s.cfg.MaxChunkSize, cm.Size)
	switch {
	case err == errCut:
		return
	case err != nil:
		req.fail(http.StatusRequestEntityTooLarge, "Chunk %d is %v, the maximum chunk size", cm.SequenceNumber, err)
		return
	case b.size != cm.Size:
		b.remove()
		req.fail(http.StatusBadRequest, "Chunk %d: metadata says %d bytes but %d were sent", cm.SequenceNumber, cm.Size, b.size)
		return
	case b.size == 0:
		b.remove()
		req.fail(http.StatusBadRequest, "Chunk %d is empty", cm.SequenceNumber)
		return
	}
	s.mu.Lock()
	open := ss.state == thru.SessionOpen && !ss.sealed
	old := ss.chunks[cm.SequenceNumber]
	if open {
		ss.chunks[cm.SequenceNumber] = b // sent again: the last copy counts
	}
	s.mu.Unlock()
	if !open {
		b.remove()
		req.fail(http.StatusBadRequest, "Upload session %s was closed while chunk %d arrived", id, cm.SequenceNumber)
		return
	}
	old.remove()
	req.json(http.StatusOK, cm)
}

func (s *Server) getSession(req *request, id string) {
	if !s.authContent(req) || req.cutIfReset() {
		return
	}
	ss, ok := s.openSession(req, id, false)
	if !ok {
		return
	}
	s.mu.Lock()
	st := ss.statusLocked()
	s.mu.Unlock()
	req.json(http.StatusOK, st)
}

func (s *Server) commitSession(req *request, id string) {
	if !s.authContent(req) || req.cutIfReset() {
		return
	}
	ss, ok := s.openSession(req, id, false)
	if !ok {
		return
	}
	ss.commit.Lock()
	defer ss.commit.Unlock()
	parts, size, meta, ok := s.sealSession(req, ss)
	if !ok {
		return
	}
	// The file is read (for its sha256) outside Server.mu, its chunks sealed.
	sum, err := hashParts(parts)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.sealed = false
	if err != nil {
		req.fail(http.StatusInternalServerError, "Commit of upload session %s: reading the chunks: %v", id, err)
		return
	}
	ss.result = s.deliverContentLocked(meta, parts, size, sum)
	ss.state, ss.chunks = thru.SessionCommitted, map[int]blob{}
	req.json(http.StatusOK, ss.result)
}

// sealSession checks that session ss can be committed and seals its
// chunks; it answers itself when not (a repeated Commit with 200).
func (s *Server) sealSession(req *request, ss *session) ([]blob, int64, *thru.FileMetadata, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ss.state == thru.SessionCommitted:
		req.json(http.StatusOK, ss.result) // Commit again: the file is already there
		return nil, 0, nil, false
	case ss.state != thru.SessionOpen:
		req.fail(http.StatusBadRequest, "Upload session %s is %s", ss.id, ss.state)
		return nil, 0, nil, false
	case ss.meta == nil:
		req.fail(http.StatusBadRequest, "Upload session %s has no file metadata; PATCH it before Commit", ss.id)
		return nil, 0, nil, false
	}
	var parts []blob
	var size int64
	if len(ss.chunks) > 0 {
		var err error
		if parts, size, err = assemble(ss.chunks, -1); err != nil {
			req.fail(http.StatusBadRequest, "Commit of upload session %s: %v", ss.id, err)
			return nil, 0, nil, false
		}
	}
	p, _ := thru.ParseEndpointPath(ss.meta.EndpointPath)
	var ep *EndpointConfig
	for i, e := range s.flows[p.FlowCode].cfg.Endpoints {
		if e.Code == p.EndpointCode && e.ID == p.ID {
			ep = &s.flows[p.FlowCode].cfg.Endpoints[i]
		}
	}
	if reason := rule(ep, ss.meta.Attributes.FileName, size); reason != "" {
		req.fail(http.StatusBadRequest, "Upload refused by the endpoint's rules: %s", reason)
		return nil, 0, nil, false
	}
	ss.sealed = true
	return parts, size, ss.meta, true
}

func (s *Server) abortSession(req *request, id string) {
	if !s.authContent(req) {
		return
	}
	ss, ok := s.openSession(req, id, false)
	if !ok {
		return
	}
	b, err := req.readBody(req.r.Body, 64<<10, req.r.ContentLength)
	if err == errCut {
		return
	}
	var a thru.AbortRequest
	if err != nil || json.Unmarshal(b, &a) != nil || (a.Status != thru.AbortError && a.Status != thru.AbortCancelled) {
		req.fail(http.StatusBadRequest, "Abort body must be JSON {\"status\": 0 (error) or 1 (cancelled), \"message\": \"...\"}")
		return
	}
	s.mu.Lock()
	state, sealed := ss.state, ss.sealed
	if state == thru.SessionOpen && !sealed {
		for _, b := range ss.chunks {
			b.remove()
		}
		ss.state, ss.abort, ss.chunks = thru.SessionAborted, &a, map[int]blob{}
	}
	s.mu.Unlock()
	if state == thru.SessionCommitted || sealed {
		req.fail(http.StatusBadRequest, "Upload session %s is already committed", id)
		return
	}
	req.WriteHeader(http.StatusOK)
}

// serveAdmin serves the inspection and control endpoints:
//
//	POST /_admin/pickup/{flow}?name=NAME   body = content; answers {"fileCode"}
//	GET  /_admin/deliveries                JSON list (without content)
//	GET  /_admin/deliveries/{fileCode}     the delivered content
//	GET  /_admin/calls                     the call log
//	GET  /_admin/outcomes                  the flow outcomes received
//	PUT  /_admin/faults                    JSON Faults
//	POST /_admin/fail-nth                  JSON {"kind", "n", "status", "lose"}
//	                                       (lose: LoseAnswerNth, status unused)
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/_admin/")
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case strings.HasPrefix(rest, "pickup/") && r.Method == http.MethodPost:
		code, err := s.AddPickupFrom(strings.TrimPrefix(rest, "pickup/"), r.URL.Query().Get("name"), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(map[string]string{"fileCode": code})
	case rest == "deliveries" && r.Method == http.MethodGet:
		reply(list(s.Deliveries()))
	case strings.HasPrefix(rest, "deliveries/") && r.Method == http.MethodGet:
		code := strings.TrimPrefix(rest, "deliveries/")
		for _, d := range s.Deliveries() {
			if d.FileCode == code {
				rc, err := d.Open()
				if err != nil {
					http.Error(w, err.Error(), http.StatusGone)
					return
				}
				defer discard.Close(rc)
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Header().Set("Content-Length", strconv.FormatInt(d.Size, 10))
				_, _ = io.Copy(w, rc)
				return
			}
		}
		http.Error(w, "no delivery "+code, http.StatusNotFound)
	case rest == "calls" && r.Method == http.MethodGet:
		reply(list(s.Calls()))
	case rest == "outcomes" && r.Method == http.MethodGet:
		reply(list(s.Outcomes()))
	case rest == "faults" && r.Method == http.MethodPut:
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFaults(f)
		reply(f)
	case rest == "fail-nth" && r.Method == http.MethodPost:
		var v struct {
			Kind   string `json:"kind"`
			N      int    `json:"n"`
			Status int    `json:"status"`
			Lose   bool   `json:"lose"`
		}
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if v.Lose {
			s.LoseAnswerNth(v.Kind, v.N)
		} else {
			s.FailNth(v.Kind, v.N, v.Status)
		}
		reply(v)
	default:
		http.Error(w, "unknown admin call", http.StatusNotFound)
	}
}

// list makes an empty list answer [] rather than null.
func list[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

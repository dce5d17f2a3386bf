package thru

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	// Client reaches the site; the Connector API fields must be set.
	Client ClientConfig
	// PollInterval is the wait after an empty pickup; 0 uses DefaultPollInterval.
	PollInterval time.Duration
	// Once makes Next return io.EOF at the first empty pickup, once the
	// spooled files were offered: the files available now, then the end.
	Once bool
	// SpoolDir holds picked-up files until they are acked; "" uses a
	// directory under os.TempDir named after the flow.
	SpoolDir string
	// SenderAttributes asks FileMetadata for each picked-up file and keeps
	// the sending organization as the attributes thru.sender.participant_code,
	// thru.sender.external_code and thru.sender.name.
	SenderAttributes bool
	// Logger receives failed polls (which are retried); default slog.Default().
	Logger *slog.Logger
}

// Source picks up files from a Thru flow. Each pickup is written to the spool
// directory before it is offered, because Thru hands a file out only once;
// the item reads it from there (ranges too), and Ack reports the flow
// outcome and removes it. Files found in the spool directory at start (left
// by a runner that stopped) are offered first, with the same Key.
type Source struct {
	cl     *Client
	poll   time.Duration
	finite bool // io.EOF at the first empty pickup
	spool  string
	sender bool
	log    *slog.Logger

	mu      sync.Mutex
	pending []string // spooled File Codes not yet offered
	closed  chan struct{}
	once    sync.Once
}

// spoolMeta is the sidecar of a spooled file.
type spoolMeta struct {
	FileCode string        `json:"fileCode"`
	Name     string        `json:"name"`
	Size     int64         `json:"size"`
	Time     time.Time     `json:"time"`
	Sender   *Organization `json:"sender,omitempty"`
	// Lost says why a picked-up file never arrived whole (its download
	// was cut): it is offered as a file that fails, so that the site hears
	// of it (FlowOutcome 2) instead of counting it delivered.
	Lost string `json:"lost,omitempty"`
}

// NewSource checks cfg, prepares the spool directory and returns a Source.
func NewSource(_ context.Context, cfg SourceConfig) (*Source, error) {
	if cfg.Client.FlowCode == "" || cfg.Client.Cipher == nil {
		return nil, errors.New("thru source: flow_code and aes_key are required")
	}
	cl, err := NewClient(cfg.Client)
	if err != nil {
		return nil, err
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = filepath.Join(os.TempDir(), "mftflow-thru", cfg.Client.FlowCode)
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("thru source: spool directory: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Source{cl: cl, poll: cfg.PollInterval, finite: cfg.Once, spool: cfg.SpoolDir, sender: cfg.SenderAttributes, log: cfg.Logger, closed: make(chan struct{})}
	metas, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "*.json"))
	sort.Strings(metas)
	for _, m := range metas {
		s.pending = append(s.pending, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	return s, nil
}

func (s *Source) contentPath(code string) string { return filepath.Join(s.spool, code+".data") }
func (s *Source) metaPath(code string) string    { return filepath.Join(s.spool, code+".json") }

// Next returns the next spooled file, or picks up a new one, polling every
// PollInterval (with jitter) while the queue is empty. It blocks until a file
// arrives, ctx ends or the source is closed.
func (s *Source) Next(ctx context.Context) (pipeline.Item, error) {
	for {
		select {
		case <-s.closed:
			return nil, io.EOF
		default:
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		var code string
		if len(s.pending) > 0 {
			code, s.pending = s.pending[0], s.pending[1:]
		}
		s.mu.Unlock()
		if code != "" {
			if it, err := s.spooled(code); err == nil {
				return it, nil
			}
			continue // its sidecar or content is damaged: nothing to offer
		}
		it, err := s.pickup(ctx)
		if err == nil {
			return it, nil
		}
		if !errors.Is(err, ErrNoFile) && pipeline.IsPermanent(err) {
			return nil, err // wrong keys and the like: polling on cannot help
		}
		if errors.Is(err, ErrNoFile) && s.finite {
			return nil, io.EOF
		}
		if !errors.Is(err, ErrNoFile) {
			s.log.Warn("thru pickup failed; polling again", "flow", s.cl.FlowCode(), "error", err)
		}
		// Nothing now, or a transient failure: wait, then ask again.
		wait := s.poll - s.poll/10 + rand.N(s.poll/5+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-s.closed:
			t.Stop()
			return nil, io.EOF
		case <-t.C:
		}
	}
}

// pickup takes one file from the site into the spool directory.
func (s *Source) pickup(ctx context.Context) (pipeline.Item, error) {
	p, err := s.cl.Pickup(ctx)
	if err != nil {
		return nil, err
	}
	defer discard.Close(p.Body)
	tmp := s.contentPath(p.FileCode) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("thru source: spooling %s: %w", p.FileCode, err)
	}
	n, err := io.Copy(f, p.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && p.Size >= 0 && n != p.Size {
		err = fmt.Errorf("got %d of %d bytes", n, p.Size)
	}
	if err != nil {
		_ = os.Remove(tmp) // a partial copy: one left behind only takes space
		// The site has handed the file out and will not offer it again:
		// offer a file that fails, so that its outcome tells the site.
		lost := spoolMeta{FileCode: p.FileCode, Name: p.Name, Size: max(p.Size, 0), Time: time.Now().UTC(),
			Lost: fmt.Sprintf("downloading picked-up file %s (%q) was cut: %v; Thru counts it as picked up: ask the site to make it available again", p.FileCode, p.Name, err)}
		s.log.Warn("thru pickup cut: the file is reported failed to the site", "file_code", p.FileCode, "name", p.Name, "error", err)
		return s.keep(lost)
	}
	if err := os.Rename(tmp, s.contentPath(p.FileCode)); err != nil {
		return nil, err
	}
	m := spoolMeta{FileCode: p.FileCode, Name: p.Name, Size: n, Time: time.Now().UTC()}
	if s.sender {
		// The file is already handed out: a failed look-up costs only the
		// attributes, not the file.
		if info, err := s.cl.FileMetadata(ctx, p.FileCode); err != nil {
			s.log.Warn("thru file metadata failed; the file goes on without sender attributes", "file_code", p.FileCode, "error", err)
		} else {
			m.Sender = &info.Source
		}
	}
	return s.keep(m)
}

// keep writes m beside the spooled content and returns its item.
func (s *Source) keep(m spoolMeta) (pipeline.Item, error) {
	b, _ := json.Marshal(m)
	if err := os.WriteFile(s.metaPath(m.FileCode), b, 0o600); err != nil {
		return nil, err
	}
	return s.item(m), nil
}

func (s *Source) spooled(code string) (pipeline.Item, error) {
	b, err := os.ReadFile(s.metaPath(code))
	if err != nil {
		return nil, err
	}
	var m spoolMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if st, err := os.Stat(s.contentPath(code)); m.Lost == "" && (err != nil || st.Size() != m.Size) {
		return nil, fmt.Errorf("spooled file %s is incomplete", code)
	}
	return s.item(m), nil
}

func (s *Source) item(m spoolMeta) *item {
	attrs := map[string]string{AttrFileCode: m.FileCode}
	if o := m.Sender; o != nil {
		attrs[AttrSenderCode], attrs[AttrSenderExternalCode], attrs[AttrSenderName] = o.ParticipantCode, o.ExternalCode, o.Name
	}
	return &item{src: s, meta: m, file: pipeline.File{
		Key: "thru:" + m.FileCode, Name: m.Name, Size: m.Size, ModTime: m.Time, Attrs: attrs,
	}}
}

// Attributes of files from the thru source with sender_attributes set.
const (
	AttrSenderCode         = "thru.sender.participant_code"
	AttrSenderExternalCode = "thru.sender.external_code" // such as a DUNS number
	AttrSenderName         = "thru.sender.name"
)

// Attributes a flow's stages set on a picked-up file (with the attrs
// stage, say) for Ack to report in the file's FlowOutcome.
const (
	// AttrBatchTotal is batchTotalRecordCount: the records of the batch
	// the file holds, a whole number.
	AttrBatchTotal = "thru.batch_total"
	// AttrBatchFailed is batchFailedRecordCount: how many of them failed,
	// a whole number no larger than thru.batch_total.
	AttrBatchFailed = "thru.batch_failed"
	// AttrRecipients is SelectiveDropOffRecipients: the recipients of a
	// broadcast that get the file privately, separated by commas.
	AttrRecipients = "thru.recipients"
)

// outcomeAttrs reads the outcome attributes of f. An attribute that is
// absent is left out of the outcome; one that is present must be right:
// an empty recipient list, say, would quietly broadcast to everyone.
func outcomeAttrs(f pipeline.File) (total, failed int, recipients []string, err error) {
	bad := func(format string, args ...any) (int, int, []string, error) {
		return 0, 0, nil, fmt.Errorf("thru source: file %q (File Code %s): "+format, append([]any{f.Name, f.Attr(AttrFileCode)}, args...)...)
	}
	count := func(key string) (int, bool) {
		v, ok := f.Attrs[key]
		if !ok {
			return 0, true
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil && n >= 0
	}
	total, ok := count(AttrBatchTotal)
	if !ok {
		return bad("attribute %s = %q is not a record count: want a whole number, 0 or more, such as \"120\"; correct the stage that sets it", AttrBatchTotal, f.Attrs[AttrBatchTotal])
	}
	if failed, ok = count(AttrBatchFailed); !ok {
		return bad("attribute %s = %q is not a record count: want a whole number, 0 or more, such as \"3\"; correct the stage that sets it", AttrBatchFailed, f.Attrs[AttrBatchFailed])
	}
	if failed > total {
		return bad("attribute %s = %d is more than %s = %d: a batch cannot fail more records than it holds; set %s to the batch's record count",
			AttrBatchFailed, failed, AttrBatchTotal, total, AttrBatchTotal)
	}
	if v, ok := f.Attrs[AttrRecipients]; ok {
		for i, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r == "" {
				return bad("attribute %s = %q: recipient %d is empty: want recipient codes separated by commas, such as \"ORG1,ORG2\", "+
					"or no %s attribute at all to send the file to every recipient", AttrRecipients, v, i+1, AttrRecipients)
			}
			recipients = append(recipients, r)
		}
	}
	return total, failed, recipients, nil
}

// Close stops Next; items already returned can still be acked.
func (s *Source) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

type item struct {
	src  *Source
	meta spoolMeta
	file pipeline.File
}

func (it *item) File() pipeline.File { return it.file }

func (it *item) Open(context.Context) (io.ReadCloser, error) {
	return it.open()
}

func (it *item) OpenRange(_ context.Context, offset, length int64) (io.ReadCloser, error) {
	f, err := it.open()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

// open opens the spooled content; a file whose download was cut fails for
// good, saying so.
func (it *item) open() (*os.File, error) {
	if it.meta.Lost != "" {
		return nil, pipeline.Permanent(errors.New("thru source: " + it.meta.Lost))
	}
	return os.Open(it.src.contentPath(it.meta.FileCode))
}

// CheckAttrs checks the outcome attributes (thru.batch_total,
// thru.batch_failed, thru.recipients) the stages set, so that a wrong one
// fails the file before delivery, saying what to correct. It implements
// pipeline.AttrChecker.
func (it *item) CheckAttrs(f pipeline.File) error {
	_, _, _, err := outcomeAttrs(f.WithAttr(AttrFileCode, it.meta.FileCode))
	return err
}

// AckRemoves reports true for every status: Ack removes the spooled file,
// the only copy left once the site handed the file out. It implements
// pipeline.AckRemover.
func (it *item) AckRemoves(pipeline.Status) bool { return true }

// Ack reports the outcome to the site (FlowOutcome: 1 passed, 2 failed,
// 3 mixed; a skipped file counts as passed, its reason in the message) with
// the run id as flowInstanceCode and the batch counts and recipients of
// the attributes thru.batch_total, thru.batch_failed and thru.recipients
// (o.Attrs), then removes the spooled file. A second
// Ack finds nothing spooled and returns nil.
func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	code := it.meta.FileCode
	if _, err := os.Stat(it.src.metaPath(code)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	status, msg := int(o.Status), o.Message
	if o.Status == pipeline.Skipped {
		status, msg = OutcomePassed, "skipped: "+o.Message
	}
	var detail []string
	for name, r := range o.Sinks {
		if !r.Committed {
			detail = append(detail, name+": "+r.Error)
		}
	}
	sort.Strings(detail)
	// The engine checked these before delivery (CheckAttrs); a file that
	// failed before its stages ended has the source's attributes, which
	// hold none of them. Should one still be wrong, the outcome goes
	// without them, and says why.
	total, failed, recipients, aerr := outcomeAttrs(pipeline.File{Name: it.file.Name, Attrs: o.Attrs}.WithAttr(AttrFileCode, code))
	if aerr != nil {
		detail = append(detail, aerr.Error())
	}
	err := it.src.cl.ReportOutcome(ctx, FlowOutcome{
		FileCode: code, FlowOutcome: status, FlowInstanceCode: o.RunID,
		BatchTotalRecordCount: total, BatchFailedRecordCount: failed, SelectiveDropOffRecipients: recipients,
		ActivityMessage: msg, ActivityDetail: strings.Join(detail, "\n"),
	})
	if err != nil {
		return err
	}
	// The outcome is reported: an error now would report it again. A
	// spooled copy left behind only takes space, so it is logged.
	if err := os.Remove(it.src.contentPath(code)); err != nil && !errors.Is(err, os.ErrNotExist) {
		it.src.log.Warn("thru source: removing a delivered file's spooled copy", "file_code", code, "error", err)
	}
	if err := os.Remove(it.src.metaPath(code)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

var (
	_ pipeline.Source      = (*Source)(nil)
	_ pipeline.RangeOpener = (*item)(nil)
	_ pipeline.AckRemover  = (*item)(nil)
	_ pipeline.AttrChecker = (*item)(nil)
)

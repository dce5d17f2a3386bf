package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/notify"
	"github.com/mftflow/mftflow/pipeline/sla"
)

// readTimeout bounds the bus reads of one page (SLA state, notifications,
// the audit trail, a replay).
const readTimeout = 30 * time.Second

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.who(nil, r); ok || c.o.NoAuth {
		http.Redirect(w, r, c.next(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "login", identity{}, "Log in", loginBody{Next: r.URL.Query().Get("next"), Tokens: len(c.o.Access.Tokens) > 0})
}

type loginBody struct {
	Next, Name, Error string
	Tokens            bool
}

// next returns where to go after logging in: a path of the console only.
func (c *Console) next(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, c.base+"/") || strings.HasPrefix(next, "//") {
		return c.base + "/"
	}
	return u.RequestURI()
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.o.NoAuth {
		http.Redirect(w, r, c.base+"/", http.StatusSeeOther)
		return
	}
	cop := http.NewCrossOriginProtection()
	if err := cop.Check(r); err != nil {
		http.Error(w, "refused: a login from another site", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	name, password, token := r.PostFormValue("name"), r.PostFormValue("password"), r.PostFormValue("token")
	var id identity
	ok := false
	switch {
	case token != "":
		var k Token
		k, ok = c.o.Access.token(token)
		id = identity{Name: k.Name, Role: k.Role, Via: "token"}
	default:
		var u User
		u, ok = c.o.Access.login(name, password)
		id = identity{Name: u.Name, Role: u.Role, Via: "password"}
	}
	if !ok {
		c.o.Logger.Warn("console: a login failed", "user", name, "remote", r.RemoteAddr)
		c.render(w, r, http.StatusUnauthorized, "login", identity{}, "Log in",
			loginBody{Next: r.PostFormValue("next"), Name: name, Tokens: len(c.o.Access.Tokens) > 0,
				Error: "The name and password (or the token) are not right."})
		return
	}
	if id.Via == "token" {
		id.Via = "token-login" // a browser session: it needs CSRF tokens like any other
	}
	c.sessions.issue(w, id)
	c.o.Logger.Info("console: logged in", "user", id.Name, "role", id.Role, "remote", r.RemoteAddr)
	http.Redirect(w, r, c.next(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, id identity) {
	c.sessions.end(w)
	http.Redirect(w, r, c.base+"/login", http.StatusSeeOther)
}

// flowView is a flow's summary with its SLA state.
type flowView struct {
	flowSummary
	SLA []sla.Status
}

type overviewBody struct {
	Flows  []flowView
	HasSLA bool // some flow expects files
}

func (c *Console) overviewData(ctx context.Context, withSLA bool) overviewBody {
	var b overviewBody
	for _, name := range c.state.names() {
		snap, ready, ok := c.state.flow(name)
		if !ok {
			continue
		}
		v := flowView{flowSummary: summarize(snap, ready, c.live.flow(name), c.o.RunID)}
		if withSLA {
			v.SLA, _ = c.slaOf(ctx, name)
			b.HasSLA = b.HasSLA || len(v.SLA) > 0
		}
		b.Flows = append(b.Flows, v)
	}
	return b
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, id identity) {
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	c.render(w, r, http.StatusOK, "overview", id, "Flows", c.overviewData(ctx, true))
}

func (c *Console) slaOf(ctx context.Context, flow string) ([]sla.Status, error) {
	kv, err := c.o.JS.KeyValue(ctx, bus.Names{Flow: flow}.Bucket())
	if err != nil {
		return nil, err
	}
	return sla.ReadFlowStatus(ctx, kv, c.o.Now())
}

type flowBody struct {
	flowSummary
	SLA       []sla.Status
	SLAError  string
	Notify    []notify.TargetStatus
	Transfers []transfer
	More      int
}

// snapOf returns a flow's snapshot, or answers 404.
func (c *Console) snapOf(w http.ResponseWriter, r *http.Request, id identity) (*snapshot, bool, bool) {
	name := r.PathValue("flow")
	snap, ready, ok := c.state.flow(name)
	if !ok {
		c.render(w, r, http.StatusNotFound, "missing", id, "No such flow",
			fmt.Sprintf("No flow %q on this NATS server. A flow appears here once a runner has run it; the list of flows is on the Flows page.", name))
	}
	return snap, ready, ok
}

func (c *Console) flowData(snap *snapshot, ready bool) flowBody {
	b := flowBody{flowSummary: summarize(snap, ready, c.live.flow(snap.status.Flow), c.o.RunID)}
	b.Transfers, b.More = transfers(snap, maxTransfers)
	return b
}

func (c *Console) flowPage(w http.ResponseWriter, r *http.Request, id identity) {
	snap, ready, ok := c.snapOf(w, r, id)
	if !ok {
		return
	}
	b := c.flowData(snap, ready)
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	var err error
	if b.SLA, err = c.slaOf(ctx, b.Flow); err != nil {
		b.SLAError = err.Error()
	}
	if b.Notify, err = notify.Inspect(ctx, c.o.JS, b.Flow); err != nil {
		c.o.Logger.Warn("console: reading the notifications' state", "flow", b.Flow, "err", err)
	}
	c.render(w, r, http.StatusOK, "flow", id, "Flow "+b.Flow, b)
}

type failuresBody struct {
	Flow     string
	Failures []failure
	More     int
	Operator bool
	Ready    bool
}

func (c *Console) failuresData(snap *snapshot, ready bool, id identity) failuresBody {
	b := failuresBody{Flow: snap.status.Flow, Operator: id.operator(), Ready: ready}
	b.Failures, b.More = failures(snap, maxFailures)
	return b
}

func (c *Console) failuresPage(w http.ResponseWriter, r *http.Request, id identity) {
	snap, ready, ok := c.snapOf(w, r, id)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "failures", id, "Failures of "+snap.status.Flow, c.failuresData(snap, ready, id))
}

type fileBody struct {
	Flow      string
	File      engine.FileStatus
	Status    string
	Progress  []progress
	Timeline  []pipeline.Event
	TrailNote string
	Operator  bool
}

func (c *Console) fileData(snap *snapshot, fileID string, id identity) (fileBody, bool) {
	b := fileBody{Flow: snap.status.Flow, Operator: id.operator()}
	i := slices.IndexFunc(snap.status.Files, func(f engine.FileStatus) bool { return f.Manifest.ID == fileID })
	if i < 0 {
		return b, false
	}
	b.File = snap.status.Files[i]
	b.Status = fileStatus(b.File)
	m := b.File.Manifest
	for _, d := range b.File.Deliveries {
		b.Progress = append(b.Progress, progress{Sink: d.Sink, State: d.State, Bytes: written(d, m.Size), Size: m.Size,
			Rate: snap.rates[bus.DeliveryKey(m.ID, d.Sink)], Attempts: d.Attempts, Error: d.Error})
	}
	return b, true
}

func (c *Console) filePage(w http.ResponseWriter, r *http.Request, id identity) {
	snap, _, ok := c.snapOf(w, r, id)
	if !ok {
		return
	}
	b, found := c.fileData(snap, r.PathValue("id"), id)
	if !found {
		c.render(w, r, http.StatusNotFound, "missing", id, "No such file",
			fmt.Sprintf("Flow %s has no file with id %q. Search finds files by name.", snap.status.Flow, r.PathValue("id")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	b.Timeline, b.TrailNote = c.timeline(ctx, b.Flow, b.File.Manifest)
	c.render(w, r, http.StatusOK, "file", id, b.File.Manifest.Name, b)
}

// timeline reads a file's events from the flow's audit trail, from an hour
// before the file's record was made (its discovery comes a moment before).
func (c *Console) timeline(ctx context.Context, flow string, m bus.Manifest) ([]pipeline.Event, string) {
	var since time.Time
	if !m.Created.IsZero() {
		since = m.Created.Add(-time.Hour)
	}
	var evs []pipeline.Event
	err := audit.Walk(ctx, c.o.JS, flow, since, func(s audit.Stored) bool {
		for _, ev := range s.Events {
			if ev.FileID == m.ID {
				evs = append(evs, ev)
			}
		}
		return true
	})
	switch {
	case err != nil && strings.Contains(err.Error(), "has no audit trail"):
		return nil, "This flow keeps no audit trail: add \"audit: {}\" to its flow file to record each file's steps."
	case err != nil:
		c.o.Logger.Warn("console: reading the audit trail", "flow", flow, "err", err)
		return evs, "The audit trail could not be read completely: " + err.Error()
	case len(evs) == 0:
		return nil, "The audit trail holds no step of this file (it may have aged out)."
	}
	return evs, ""
}

type searchBody struct {
	Query    query
	Flows    []string
	Statuses []string
	Results  []result
	Total    int
	More     int
	Error    string
	Searched bool
}

func (c *Console) searchPage(w http.ResponseWriter, r *http.Request, id identity) {
	v := r.URL.Query()
	b := searchBody{Flows: c.state.names(), Statuses: statuses,
		Query: query{Flow: v.Get("flow"), Text: strings.TrimSpace(v.Get("q")), Status: v.Get("status"), Since: v.Get("since"), Until: v.Get("until")}}
	b.Searched = len(v) > 0
	if err := b.Query.parse(c.o.Now()); err != nil {
		b.Error = err.Error()
		c.render(w, r, http.StatusBadRequest, "search", id, "Search", b)
		return
	}
	if b.Searched {
		c.search(&b)
	}
	c.render(w, r, http.StatusOK, "search", id, "Search", b)
}

// search fills in the files that b's query finds, newest first.
func (c *Console) search(b *searchBody) {
	for _, name := range b.Flows {
		if b.Query.Flow != "" && name != b.Query.Flow {
			continue
		}
		snap, _, ok := c.state.flow(name)
		if !ok {
			continue
		}
		for _, f := range snap.status.Files {
			if b.Query.match(f) {
				b.Total++
				b.Results = append(b.Results, resultOf(name, f))
			}
		}
	}
	slices.SortStableFunc(b.Results, func(x, y result) int { return y.Arrived.Compare(x.Arrived) })
	if len(b.Results) > maxResults {
		b.More = len(b.Results) - maxResults
		b.Results = b.Results[:maxResults]
	}
}

type replayBody struct {
	Flow    string
	By      string
	Report  engine.Report
	Error   string
	Refused bool
}

// replay queues failed deliveries again (engine.Replay) and records who
// asked in the flow's audit trail.
func (c *Console) replay(w http.ResponseWriter, r *http.Request, id identity) {
	flow, file, sink := r.PathValue("flow"), r.PostFormValue("file"), r.PostFormValue("sink")
	if file == "" {
		http.Error(w, "replay: the form names no file (field file: a file id)", http.StatusBadRequest)
		return
	}
	sel := engine.Selector{Files: []string{file}}
	if sink != "" {
		sel.Sinks = []string{sink}
	}
	by := id.Name + " (console)"
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	rep, err := engine.Replay(ctx, c.o.JS, flow, sel)
	if aerr := audit.Append(ctx, c.o.JS, flow, "console", rep.Events(by, c.o.Now())); aerr != nil {
		err = errors.Join(err, aerr)
	}
	b := replayBody{Flow: flow, By: by, Report: rep, Refused: len(rep.Refused) > 0}
	code := http.StatusOK
	if err != nil {
		b.Error = err.Error()
		code = http.StatusInternalServerError
	}
	c.o.Logger.Info("console: replay", "flow", flow, "file", file, "sink", sink, "by", id.Name,
		"requeued", len(rep.Requeued), "reread", len(rep.Reread), "refused", len(rep.Refused), "err", err)
	if r.Header.Get("HX-Request") == "true" {
		c.fragment(w, code, "replay-result", id, b)
		return
	}
	c.render(w, r, code, "replay", id, "Replay", b)
}

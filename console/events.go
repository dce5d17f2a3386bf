package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Event streams: a page opens one (GET events?view=...&flow=...) and the
// console sends the page's live parts as server-sent events, each an HTML
// fragment that htmx's SSE extension swaps in by the event's name
// (sse-swap). A fragment is sent when it changed, at most every
// Options.UpdateInterval; a comment every heartbeat keeps proxies from
// closing the stream.
const heartbeat = 15 * time.Second

// stream is the fragments a view sends: name → how to render it.
type stream map[string]func() (any, bool)

func (c *Console) streamOf(r *http.Request, id identity) (stream, error) {
	flow := r.URL.Query().Get("flow")
	snap := func() (*snapshot, bool, bool) { return c.state.flow(flow) }
	switch view := r.URL.Query().Get("view"); view {
	case "overview":
		return stream{"overview": func() (any, bool) { return c.overviewData(r.Context(), false), true }}, nil
	case "flow":
		return stream{
			"flow-head": func() (any, bool) {
				s, ready, ok := snap()
				if !ok {
					return nil, false
				}
				return c.flowData(s, ready), true
			},
			"transfers": func() (any, bool) {
				s, ready, ok := snap()
				if !ok {
					return nil, false
				}
				return c.flowData(s, ready), true
			},
		}, nil
	case "failures":
		return stream{"failures": func() (any, bool) {
			s, ready, ok := snap()
			if !ok {
				return nil, false
			}
			return c.failuresData(s, ready, id), true
		}}, nil
	case "file":
		fileID := r.URL.Query().Get("id")
		return stream{"file-deliveries": func() (any, bool) {
			s, _, ok := snap()
			if !ok {
				return nil, false
			}
			return c.fileData(s, fileID, id)
		}}, nil
	default:
		return nil, fmt.Errorf("no such view %q: want overview, flow, failures or file", view)
	}
}

// events streams a view's live fragments until the client goes away.
func (c *Console) events(w http.ResponseWriter, r *http.Request, id identity) {
	st, err := c.streamOf(r, id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "this server cannot stream events", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return // the browser went away
	}
	flusher.Flush()
	sent := map[string]string{}
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		changed, live := c.state.wait(), c.live.wait()
		if err := c.send(w, st, id, sent); err != nil {
			return
		}
		flusher.Flush()
		last := time.Now()
		select {
		case <-r.Context().Done():
			return
		case <-c.closing:
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			flusher.Flush()
			continue
		case <-changed:
		case <-live:
		}
		// A change after a quiet spell goes out at once; a burst of them
		// at most every UpdateInterval.
		if d := c.o.UpdateInterval - time.Since(last); d > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(d):
			}
		}
	}
}

// send writes the fragments of st that differ from what was sent.
func (c *Console) send(w http.ResponseWriter, st stream, id identity, sent map[string]string) error {
	for name, data := range st {
		body, ok := data()
		if !ok {
			continue
		}
		html, err := c.renderFragment(name, id, body)
		if err != nil {
			c.o.Logger.Error("console: rendering a fragment", "fragment", name, "err", err)
			continue
		}
		if sent[name] == html {
			continue
		}
		sent[name] = html
		if err := writeEvent(w, name, html); err != nil {
			return err
		}
	}
	return nil
}

// writeEvent writes one server-sent event; each line of data gets its own
// "data:" field.
func writeEvent(w http.ResponseWriter, name, data string) error {
	var b strings.Builder
	b.WriteString("event: " + name + "\n")
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: " + strings.TrimRight(line, "\r") + "\n")
	}
	b.WriteString("\n")
	_, err := w.Write([]byte(b.String()))
	return err
}

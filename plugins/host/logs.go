package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogger returns an hclog logger whose records go to log: go-plugin logs
// through it, and re-logs a plugin's hclog output through it too.
func hclogger(log *slog.Logger, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     &slogWriter{log: log},
		JSONFormat: true,
		Level:      hclog.Debug,
	})
}

// slogWriter turns hclog's JSON lines into slog records.
type slogWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func (w *slogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.record(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *slogWriter) record(line []byte) {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		w.log.Info(string(line))
		return
	}
	msg, _ := m["@message"].(string)
	lvl := levelOf(m["@level"])
	var attrs []any
	if mod, ok := m["@module"].(string); ok {
		attrs = append(attrs, "plugin", mod)
	}
	for k, v := range m {
		if strings.HasPrefix(k, "@") || k == "timestamp" {
			continue
		}
		attrs = append(attrs, k, v)
	}
	w.log.Log(context.Background(), lvl, msg, attrs...)
}

func levelOf(v any) slog.Level {
	s, _ := v.(string)
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// lineLogger logs every line written to it at level, and keeps the last few
// lines so an error can show what a plugin printed before it died.
type lineLogger struct {
	log   *slog.Logger
	level slog.Level
	mu    sync.Mutex
	buf   []byte
	tail  []string
}

const tailLines = 8

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		if line == "" {
			continue
		}
		if w.log != nil {
			w.log.Log(context.Background(), w.level, line)
		}
		w.tail = append(w.tail, line)
		if len(w.tail) > tailLines {
			w.tail = w.tail[1:]
		}
	}
}

// lastLines returns the last lines written, joined for an error message.
func (w *lineLogger) lastLines() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}

var _ io.Writer = (*lineLogger)(nil)

package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// assetVersion is a digest of the embedded assets, in their URLs, so that
// browsers cache them for good and fetch them again after an upgrade.
var assetVersion = func() string {
	h := sha256.New()
	// The walk's function never fails, and neither does an embedded FS.
	_ = fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := assetFS.ReadFile(p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// assetHandler serves the embedded assets: htmx, its SSE extension, the
// style sheet.
func assetHandler() http.Handler {
	sub, _ := fs.Sub(assetFS, "assets")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || strings.HasSuffix(r.URL.Path, ".md") || strings.HasSuffix(r.URL.Path, ".txt") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == assetVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
}

// pages holds one template set per page, each the layout with the page's
// content, and the fragments that event streams send.
type pages struct {
	byName map[string]*template.Template
}

var pageNames = []string{"login", "overview", "flow", "failures", "file", "search", "replay", "missing"}

var funcs = template.FuncMap{
	"size": func(n int64) string {
		if n < 0 {
			return "?"
		}
		return pipeline.FormatSize(n)
	},
	"rate": func(r float64) string {
		if r <= 0 {
			return "–"
		}
		return pipeline.FormatSize(int64(r)) + "/s"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short": func(id string) string {
		if len(id) > 12 {
			return id[:12]
		}
		return id
	},
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	},
	"class":    func(s string) string { return strings.ReplaceAll(s, " ", "-") },
	"describe": audit.Describe,
	"frag": func(base, csrf string, body any) fragmentData {
		return fragmentData{Base: base, CSRF: csrf, Body: body}
	},
}

func parsePages() (*pages, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html")
	if err != nil {
		return nil, fmt.Errorf("console: parsing the templates: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{"": base}}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parsing the template of page %s: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// pageData is what the layout gets.
type pageData struct {
	Title, Base, CSRF, Asset, Nav string
	User                          identity
	LoggedIn                      bool
	Open                          bool // no access control
	Body                          any
}

// render writes page name with body in the layout.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, id identity, title string, body any) {
	d := pageData{Title: title, Base: c.base, CSRF: c.sessions.csrf(id), Asset: assetVersion, Nav: name,
		User: id, LoggedIn: id.Name != "", Open: c.o.NoAuth, Body: body}
	var buf bytes.Buffer
	if err := c.pages.byName[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		c.o.Logger.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.write(w, buf.Bytes())
}

// fragmentData is what a fragment gets: the body and the console's base
// path.
type fragmentData struct {
	Base, CSRF string
	Body       any
}

// renderFragment returns a fragment (a template of fragments.html) as HTML.
func (c *Console) renderFragment(name string, id identity, body any) (string, error) {
	var buf bytes.Buffer
	err := c.pages.byName[""].ExecuteTemplate(&buf, name, fragmentData{Base: c.base, CSRF: c.sessions.csrf(id), Body: body})
	return buf.String(), err
}

// fragment writes a fragment as the answer to an htmx request.
func (c *Console) fragment(w http.ResponseWriter, code int, name string, id identity, body any) {
	html, err := c.renderFragment(name, id, body)
	if err != nil {
		c.o.Logger.Error("console: rendering a fragment", "fragment", name, "err", err)
		http.Error(w, "rendering failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.write(w, []byte(html))
}

// write sends an answer's body. The status is out already, so a failure
// (mostly a browser that went away) can only be logged.
func (c *Console) write(w http.ResponseWriter, body []byte) {
	if _, err := w.Write(body); err != nil {
		c.o.Logger.Debug("console: writing an answer", "err", err)
	}
}

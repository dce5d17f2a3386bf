package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mftflow/mftflow/testkit"
)

// The browser tests drive Debian's chromium, headless, through chromedp.
// scripts/chromium.sh installs it (make test runs it first). Without it they
// fail, unless MFTFLOW_SKIP_BROWSER_TESTS=1 (or -short) allows skipping.
// MFTFLOW_CHROMIUM names another binary; screenshots go to the directory
// MFTFLOW_SCREENSHOTS names (default: the test's temporary directory) and
// their paths are logged.

func chromiumPath(t *testing.T) string {
	if p := os.Getenv("MFTFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Debian's chromium is not installed: run scripts/chromium.sh (make test does)"
	if os.Getenv("MFTFLOW_SKIP_BROWSER_TESTS") == "1" || testing.Short() {
		t.Skip(msg + "; skipped, as MFTFLOW_SKIP_BROWSER_TESTS=1 or -short allows")
	}
	t.Fatal(msg + ", or set MFTFLOW_SKIP_BROWSER_TESTS=1 to skip the browser tests")
	return ""
}

// browser is one headless chromium on a site.
type browser struct {
	t     *testing.T
	ctx   context.Context
	site  *site
	shots string
}

func newBrowser(t *testing.T, s *site) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // the tests may run as root, which chromium's sandbox refuses
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	shots := os.Getenv("MFTFLOW_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, site: s, shots: shots}
}

// do runs steps, within 30 seconds.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise).
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true.
func (b *browser) waitJS(what, expr string, d time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("waiting %v for %s (%s): %v", d, what, expr, err)
	}
}

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("saving screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", p)
}

// on returns b reporting to t, a subtest's.
func (b *browser) on(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("opening "+path, chromedp.Navigate(b.site.url+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
}

func (b *browser) login(name, password string) {
	b.t.Helper()
	b.do("logging in as "+name,
		chromedp.Navigate(b.site.url+"/console/login"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`main button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)),
	)
}

func (b *browser) logout() {
	b.t.Helper()
	b.do("logging out", chromedp.Click(chromedp.CSS(`header .who button`)), chromedp.WaitVisible(chromedp.CSS("#password")))
}

// post sends a replay POST from the page with fetch, as a forged request
// would, and returns the answer's status.
func (b *browser) post(csrf string) int {
	b.t.Helper()
	headers := "{'Content-Type': 'application/x-www-form-urlencoded'}"
	if csrf != "" {
		headers = fmt.Sprintf("{'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': %q}", csrf)
	}
	return eval[int](b, fmt.Sprintf(`fetch('/console/flows/demo/replay', {method: 'POST', headers: %s,
		body: 'file=' + encodeURIComponent(document.querySelector('tr[data-file]').dataset.file) + '&sink=partner'}).then(r => r.status)`, headers))
}

// unlabelled lists the inputs, selects, buttons and progress bars of the
// page that have no accessible name, and other basic faults.
const unlabelled = `(() => {
	const bad = [];
	const named = el => (el.getAttribute('aria-label') || '').trim() || (el.getAttribute('aria-labelledby') ? 'by' : '') ||
		(el.labels ? [...el.labels].map(l => l.textContent.trim()).join(' ') : '') ||
		(el.tagName === 'BUTTON' ? el.textContent.trim() : '');
	for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, progress')) {
		if (!named(el)) bad.push(el.outerHTML.slice(0, 160));
	}
	for (const a of document.querySelectorAll('a')) if (!a.textContent.trim() && !a.getAttribute('aria-label')) bad.push(a.outerHTML.slice(0, 160));
	if (!document.documentElement.lang) bad.push('<html> without lang');
	if (!document.querySelector('main')) bad.push('no <main>');
	return bad;
})()`

// lowContrast lists text whose colour has less than 4.5:1 contrast with
// the background behind it (WCAG AA for normal text).
const lowContrast = `(() => {
	const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
	const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
	const bg = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c; } return [255, 255, 255]; };
	const bad = [];
	for (const el of document.querySelectorAll('body *')) {
		const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
		if (!own || el.offsetParent === null) continue;
		const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
		const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
		if (ratio < 4.5) bad.push(el.tagName + '.' + el.className + ' "' + el.textContent.trim().slice(0, 40) + '" ' + ratio.toFixed(2));
	}
	return bad;
})()`

func (b *browser) checkAccessible(page string) {
	b.t.Helper()
	if bad := eval[[]string](b, unlabelled); len(bad) > 0 {
		b.t.Errorf("%s: elements without an accessible name:\n%s", page, strings.Join(bad, "\n"))
	}
	if bad := eval[[]string](b, lowContrast); len(bad) > 0 {
		b.t.Errorf("%s: text with too little contrast:\n%s", page, strings.Join(bad, "\n"))
	}
}

// tabTo presses Tab until the element matching sel has the focus, and
// reports how many presses it took; it fails after 60.
func (b *browser) tabTo(sel string) int {
	b.t.Helper()
	for i := 1; i <= 60; i++ {
		b.do("pressing Tab", chromedp.KeyEvent("\t"))
		if eval[bool](b, fmt.Sprintf(`document.activeElement && document.activeElement.matches(%q)`, sel)) {
			return i
		}
	}
	b.shot("failed-tab-to")
	b.t.Fatalf("%s is not reachable with the Tab key", sel)
	return 0
}

// TestBrowser drives the console in headless chromium over a running flow:
// progress moves on screen, a failed delivery appears with its reason, a
// viewer cannot replay, requests without the CSRF token are refused, and an
// operator's Replay (by keyboard) delivers the file; every page has labels,
// contrast and a layout that fits a phone.
func TestBrowser(t *testing.T) {
	// Two big files at 1 MiB/s for both sinks take some seconds; the small
	// report finds a file in its way at the partner.
	files := map[string][]byte{
		"big/one.bin": testkit.RandomContent(1, 4<<20),
		"big/two.bin": testkit.RandomContent(2, 4<<20),
		"report.csv":  []byte("order,amount\n1,10\n2,20\n"),
	}
	s := startSite(t, "1MiB", files, map[string][]byte{"report.csv": []byte("yesterday's report")})
	b := newBrowser(t, s)
	b.login(operatorName, operatorPassword)

	t.Run("progress moves", func(t *testing.T) {
		b := b.on(t)
		b.open("/console/flows/demo")
		b.shot("01-flow-progress-start")
		b.do("marking the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
		const written = `document.querySelector('[data-live="sink-written"]').textContent`
		first := eval[string](b, written)
		b.waitJS("a file's delivery part way on screen", `[...document.querySelectorAll('#transfers progress[aria-label^="delivery"]')].some(p => p.value > 0 && p.value < 100)`, 30*time.Second)
		b.shot("02-flow-progress-part-way")
		b.waitJS("the bytes written to change", fmt.Sprintf(`%s !== %q`, written, first), 30*time.Second)
		second := eval[string](b, written)
		b.waitJS("the bytes written to change again", fmt.Sprintf(`%s !== %q`, written, second), 30*time.Second)
		b.shot("03-flow-progress-moved")
		if !eval[bool](b, `window.notReloaded === true`) {
			t.Error("the page was reloaded; the progress should have come by server-sent events")
		}
		t.Logf("bytes written to archive on screen: %s, then %s, then %s", first, second, eval[string](b, written))
		b.checkAccessible("flow page")
	})

	id, reason := s.failedDelivery(t, "partner")
	t.Run("a failed delivery appears with its reason", func(t *testing.T) {
		b := b.on(t)
		b.open("/console/flows/demo/failures")
		b.waitJS("the failure on screen", fmt.Sprintf(`!!document.querySelector('tr[data-file=%q][data-sink="partner"]')`, id), 30*time.Second)
		row := eval[string](b, fmt.Sprintf(`document.querySelector('tr[data-file=%q]').innerText`, id))
		if !strings.Contains(row, "report.csv") || !strings.Contains(row, reason) {
			t.Errorf("the failure's row %q lacks the name or the reason %q", row, reason)
		}
		b.shot("04-failure-appears")
		b.checkAccessible("failures page")
	})

	t.Run("requests without the CSRF token are refused", func(t *testing.T) {
		b := b.on(t)
		b.open("/console/flows/demo/failures")
		if code := b.post(""); code != 403 {
			t.Errorf("a replay without the CSRF token: %d, want 403", code)
		}
		if code := b.post("forged"); code != 403 {
			t.Errorf("a replay with a wrong CSRF token: %d, want 403", code)
		}
		if got := s.replayEvents(t); len(got) != 0 {
			t.Errorf("refused replays reached the audit trail: %q", got)
		}
	})

	t.Run("a viewer cannot replay", func(t *testing.T) {
		b := b.on(t)
		b.logout()
		b.login(viewerName, viewerPassword)
		b.open("/console/flows/demo/failures")
		b.waitJS("the failure on screen", `!!document.querySelector('tr[data-file]')`, 30*time.Second)
		if n := eval[int](b, `document.querySelectorAll('button.replay').length`); n != 0 {
			t.Errorf("a viewer sees %d Replay buttons", n)
		}
		if !eval[bool](b, `document.body.innerText.includes('Replay needs the operator role')`) {
			t.Error("the page does not say why there is no Replay button")
		}
		csrf := eval[string](b, `JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']`)
		if code := b.post(csrf); code != 403 {
			t.Errorf("a replay by a viewer with a valid CSRF token: %d, want 403", code)
		}
		b.shot("05-viewer-no-replay")
		b.checkAccessible("failures page (viewer)")
		b.logout()
		b.checkAccessible("login page")
		b.shot("06-login")
	})

	t.Run("Replay delivers the file", func(t *testing.T) {
		b := b.on(t)
		b.login(operatorName, operatorPassword)
		b.open("/console/flows/demo/failures")
		b.waitJS("the Replay button", `!!document.querySelector('button.replay')`, 30*time.Second)
		if err := os.Remove(filepath.Join(s.dir, "partner", "report.csv")); err != nil {
			t.Fatal(err)
		}
		presses := b.tabTo("button.replay")
		if !eval[bool](b, `getComputedStyle(document.activeElement).outlineStyle !== 'none'`) {
			t.Error("the focused Replay button shows no focus outline")
		}
		b.shot("07-replay-focused")
		b.do("pressing Enter on Replay", chromedp.KeyEvent("\r"))
		b.waitJS("the replay's notice", `document.querySelector('#notice').innerText.includes('Queued again by alice (console)')`, 30*time.Second)
		want := fileSum(filepath.Join(s.dir, "in", "report.csv"))
		waitFor(t, time.Minute, "the replayed file at the partner", func() bool {
			return fileSum(filepath.Join(s.dir, "partner", "report.csv")) == want
		})
		b.waitJS("the failure to leave the list", fmt.Sprintf(`!document.querySelector('tr[data-file=%q]')`, id), 30*time.Second)
		b.shot("08-replayed")
		t.Logf("Replay reached with %d Tab presses; partner/report.csv has sha256 %s", presses, want)
		if got := s.replayEvents(t); len(got) != 1 || !contains(got, id+" partner by alice (console)") {
			t.Errorf("replay events in the audit trail: %q, want one by alice (console)", got)
		}
	})

	t.Run("a file's timeline", func(t *testing.T) {
		b := b.on(t)
		b.open("/console/flows/demo/files/" + id)
		b.waitJS("the commit to the partner", `document.querySelector('#file-deliveries').innerText.includes('partner: committed')`, 30*time.Second)
		text := eval[string](b, `document.querySelector('ol.timeline').innerText`)
		for _, want := range []string{"discovered", "read", "attempt_failed", "replay", "asked by alice (console)", "committed"} {
			if !strings.Contains(text, want) {
				t.Errorf("the timeline lacks %q:\n%s", want, text)
			}
		}
		b.shot("09-file-timeline")
		b.checkAccessible("file page")
	})

	t.Run("search", func(t *testing.T) {
		b := b.on(t)
		b.open("/console/search")
		b.do("searching", chromedp.SendKeys(chromedp.CSS("#q"), "*.bin"), chromedp.Click(chromedp.CSS(`form.search button`)),
			chromedp.WaitVisible(chromedp.CSS("main table")))
		if n := eval[int](b, `document.querySelectorAll('main table tbody tr').length`); n != 2 {
			t.Errorf("search for *.bin: %d rows, want 2", n)
		}
		b.shot("10-search")
		b.checkAccessible("search page")
		b.open("/console/")
		b.checkAccessible("overview")
		b.shot("11-overview")
	})

	t.Run("fits a phone", func(t *testing.T) {
		b := b.on(t)
		b.do("narrowing the window", chromedp.EmulateViewport(390, 844))
		for i, p := range []string{"/console/", "/console/flows/demo", "/console/flows/demo/files/" + id, "/console/search?q=bin"} {
			b.open(p)
			if w := eval[int](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
				t.Errorf("%s at 390 pixels wide: %d pixels too wide", p, w)
			}
			b.shot(fmt.Sprintf("12-phone-%d", i))
		}
	})
}

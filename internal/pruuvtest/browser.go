package pruuvtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumEnv names the variable holding the Chromium (or Chrome) binary that
// browser tests drive; unset, they use Debian's /usr/bin/chromium.
const ChromiumEnv = "PRUUV_TEST_CHROMIUM"

// RequireChromiumEnv names the variable that, set to 1, makes a missing
// browser fail browser tests instead of skipping them (CI sets it).
const RequireChromiumEnv = "PRUUV_TEST_REQUIRE_CHROMIUM"

// BrowserTimeout bounds each browser step of the helpers below, so a test
// against a page that never loads fails instead of hanging.
const BrowserTimeout = 30 * time.Second

// Browser starts a headless Chromium with a new, empty profile and returns a
// chromedp context on its first tab. The browser is closed and its profile
// removed when the test ends. The test is skipped, with a message saying how
// to run it, when the binary is missing, unless RequireChromiumEnv is 1.
//
// Use Tab for more tabs with cookies and storage of their own, and Navigate,
// Eval and Exceptions for the usual steps.
func Browser(t testing.TB) context.Context {
	t.Helper()
	bin := os.Getenv(ChromiumEnv)
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv(RequireChromiumEnv) == "1" {
			t.Fatalf("Chromium not found at %s (%v) and %s=1", bin, err, RequireChromiumEnv)
		}
		t.Skipf("browser test skipped: no Chromium at %s; install Debian's chromium (apt-get install chromium) or set %s to a Chromium or Chrome binary", bin, ChromiumEnv)
	}
	profile, err := os.MkdirTemp("", "pruuv-chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// The test machines have no network but loopback: no background
		// fetches, updates or sync that would fail and slow the start.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	logf := guardedLogf(t)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(profile)
	})
	// The first run starts the browser; it must not carry a timeout, which
	// would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// guardedLogf logs to t until the test ends, then drops lines, since the
// browser may still report while it closes.
func guardedLogf(t testing.TB) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("chromium: "+format, args...)
		}
	}
}

// Tab opens a new tab of the browser of ctx in a new browser context: its
// cookies, storage and cache are its own, as in a fresh profile. It closes
// when the test ends.
func Tab(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tab
}

// Navigate loads url in the tab and waits for its load event.
func Navigate(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, BrowserTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigating to %s: %v", url, err)
	}
}

// Eval evaluates a JavaScript expression in the tab's page, waits for it when
// it is a promise, and decodes its JSON value into a T. A thrown exception or
// a rejected promise fails the test.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := EvalErr[T](ctx, expr)
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// EvalErr is Eval without the test: the error is returned.
func EvalErr[T any](ctx context.Context, expr string) (T, error) {
	sctx, cancel := context.WithTimeout(ctx, BrowserTimeout)
	defer cancel()
	return chromedp.Run(sctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// ExceptionLog collects the exceptions that pages of one tab did not catch.
type ExceptionLog struct {
	mu   sync.Mutex
	list []string
}

// List returns the uncaught exceptions so far. Chromium reports an exception
// before it answers a later command, so List after Navigate or Eval holds
// every exception that the page threw before that step finished.
func (l *ExceptionLog) List() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.list...)
}

// Exceptions starts collecting the uncaught exceptions and unhandled promise
// rejections of the tab's pages; call it before Navigate.
func Exceptions(t testing.TB, ctx context.Context) *ExceptionLog {
	t.Helper()
	l := &ExceptionLog{}
	err := chromedp.Listen(ctx, func(ev any) {
		e, ok := ev.(*runtime.EventExceptionThrown)
		if !ok || e.ExceptionDetails == nil {
			return
		}
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		l.mu.Lock()
		l.list = append(l.list, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("listening for exceptions: %v", err)
	}
	return l
}

// Site serves an advertiser's pages for browser tests, on an origin of its own
// (a loopback port other than Pruuv's), until the test ends. pages maps each
// path to the HTML that goes in its <body>; other paths are 404s.
func Site(t testing.TB, pages map[string]string) *httptest.Server {
	t.Helper()
	srv, set := SiteLater(t)
	set(pages)
	return srv
}

// SiteLater is Site for pages that can be written only once the site's origin
// is known: those that carry a real site key, which Pruuv issues for a list of
// origins. Every path is a 404 until set gives the server its pages; set may
// be called again to replace them.
func SiteLater(t testing.TB) (srv *httptest.Server, set func(pages map[string]string)) {
	t.Helper()
	var mu sync.Mutex
	current := map[string]string{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body, ok := current[r.URL.Path]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><title>site</title></head><body>%s</body></html>", body)
	}))
	t.Cleanup(srv.Close)
	return srv, func(pages map[string]string) {
		copied := make(map[string]string, len(pages))
		for k, v := range pages {
			copied[k] = v
		}
		mu.Lock()
		current = copied
		mu.Unlock()
	}
}

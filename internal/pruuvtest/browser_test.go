package pruuvtest_test

import (
	"io"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/pruuvtest"
)

func TestBrowserHarness(t *testing.T) {
	browser := pruuvtest.Browser(t)
	page := `<script>
		document.cookie = "seen=1; path=/";
		if (location.search === "?throw") setTimeout(function () { throw new Error("page bug") });
	</script>`
	site := pruuvtest.Site(t, map[string]string{"/": page, "/other": page})

	exceptions := pruuvtest.Exceptions(t, browser)
	pruuvtest.Navigate(t, browser, site.URL+"/")
	if got := pruuvtest.Eval[int](t, browser, `new Promise(r => setTimeout(() => r(6 * 7)))`); got != 42 {
		t.Errorf("awaited promise gave %d", got)
	}
	if _, err := pruuvtest.EvalErr[int](browser, `Promise.reject(new Error("no"))`); err == nil {
		t.Error("a rejected promise gave no error")
	}
	if e := exceptions.List(); len(e) != 0 {
		t.Errorf("exceptions on a clean page: %q", e)
	}
	pruuvtest.Navigate(t, browser, site.URL+"/?throw")
	pruuvtest.Eval[bool](t, browser, `new Promise(r => setTimeout(() => r(true), 10))`)
	if e := exceptions.List(); len(e) != 1 || !strings.Contains(e[0], "page bug") {
		t.Errorf("exceptions = %q, want the page's one", e)
	}

	// A Tab has cookies of its own; the first tab keeps its own.
	tab := pruuvtest.Tab(t, browser)
	pruuvtest.Navigate(t, tab, site.URL+"/other")
	if c := pruuvtest.Eval[string](t, tab, `document.cookie`); c != "seen=1" {
		t.Errorf("tab cookie after its own load = %q", c)
	}
	pruuvtest.Eval[bool](t, tab, `document.cookie = "tabonly=1; path=/", true`)
	if c := pruuvtest.Eval[string](t, browser, `document.cookie`); strings.Contains(c, "tabonly") {
		t.Errorf("the first tab sees the new tab's cookie: %q", c)
	}
}

func TestSite(t *testing.T) {
	site := pruuvtest.Site(t, map[string]string{"/a": `<p id="x">hello</p>`})
	resp, err := pruuvtest.Client().Get(site.URL + "/a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(string(b), `<body><p id="x">hello</p></body>`) {
		t.Errorf("GET /a: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	resp, err = pruuvtest.Client().Get(site.URL + "/b")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /b: %d", resp.StatusCode)
	}
}

func TestSiteLater(t *testing.T) {
	site, set := pruuvtest.SiteLater(t)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := pruuvtest.Client().Get(site.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/a"); code != 404 {
		t.Errorf("GET /a before set: %d, want 404", code)
	}
	pages := map[string]string{"/a": "first " + site.URL}
	set(pages)
	pages["/a"] = "changed after set"
	if code, body := get("/a"); code != 200 || !strings.Contains(body, "<body>first "+site.URL+"</body>") {
		t.Errorf("GET /a after set: %d %q", code, body)
	}
	set(map[string]string{"/b": "second"})
	if code, _ := get("/a"); code != 404 {
		t.Errorf("GET /a after a second set without it: %d, want 404", code)
	}
	if code, body := get("/b"); code != 200 || !strings.Contains(body, "<body>second</body>") {
		t.Errorf("GET /b: %d %q", code, body)
	}
}

package dashboard_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// With an https PRUUV_PUBLIC_URL the cookies are Secure with the __Host-
// prefix and endpoint URLs use the public origin, whatever the request's host.
func TestHTTPSPublicURL(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	cfg.PublicURL = "https://pruuv.example.com"
	srv := pruuvtest.Start(t, cfg)
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path, cookie string, form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := send("GET", "/login", "", nil)
	pre := resp.Cookies()[0]
	if pre.Name != "__Host-pruuv_login" || !pre.Secure || !pre.HttpOnly {
		t.Fatalf("login cookie %+v", pre)
	}
	tok := csrfField.FindStringSubmatch(body)[1]
	resp, _ = send("POST", "/login", "__Host-pruuv_login="+pre.Value, url.Values{"email": {email}, "password": {password}, "csrf": {tok}})
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-pruuv_session" {
			sess = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" {
		t.Fatalf("login: %d, session cookie %+v", resp.StatusCode, sess)
	}
	resp, body = send("GET", "/connections/webhooks", "__Host-pruuv_session="+sess.Value, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "https://pruuv.example.com/api/webhooks/funnel/"+stages[0].ID) {
		t.Fatalf("webhooks page: %d", resp.StatusCode)
	}
	// The plain cookie name is not honoured under https.
	if resp, _ := send("GET", "/funnels", "pruuv_session="+sess.Value, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("non-prefixed cookie accepted: %d", resp.StatusCode)
	}
}

package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestSignOutEverywhere: an admin ends every session before it expires,
// through the API or the page's form; the end outlives a restart (the
// generation is in the store), and signing in again works.
func TestSignOutEverywhere(t *testing.T) {
	f := seeded(t, func(c *Config) { c.ReadTokens = []string{readToken} })
	f.cfg.Sessions = StoreSessions(f.db)
	srv, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.h = srv, srv.Handler()
	page := func(c *http.Cookie) int {
		req := httptest.NewRequest("GET", "/runs/2", nil)
		if c != nil {
			req.AddCookie(c)
		}
		return f.do(req).Code
	}
	admin, _ := f.session(adminToken)
	reader, _ := f.session(readToken)
	if page(reader) != 200 || page(admin) != 200 {
		t.Fatal("sessions do not work before the revocation")
	}
	req := httptest.NewRequest("POST", "/api/v1/sessions/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if rec := f.do(req); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"epoch": 1`) {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if got := page(reader); got != 303 {
		t.Errorf("reader's session after revocation: %d, want 303 to sign-in", got)
	}
	if got := page(admin); got != 303 {
		t.Errorf("admin's session after revocation: %d, want 303 to sign-in", got)
	}
	reader, _ = f.session(readToken)
	if page(reader) != 200 {
		t.Error("signing in again does not work")
	}

	// The form, from a cookie session with its CSRF token.
	admin, csrf := f.session(adminToken)
	form := httptest.NewRequest("POST", "/signout-everywhere", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	form.AddCookie(admin)
	if rec := f.do(form); rec.Code != 303 {
		t.Fatalf("sign out everywhere: %d %s", rec.Code, rec.Body)
	}
	if page(reader) != 303 || page(admin) != 303 {
		t.Error("sessions survive the form's revocation")
	}

	// A restart with the same key and store keeps them ended.
	reader, _ = f.session(readToken)
	stale := reader
	if _, err := f.srv.cfg.Sessions.RevokeSessions(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.h = restarted, restarted.Handler()
	if page(stale) != 303 {
		t.Error("a session revoked before a restart works after it")
	}
}

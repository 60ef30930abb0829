package web

import (
	"net/http"
	"strings"
	"testing"
)

func TestSigningKey(t *testing.T) {
	pem := []byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
	for _, tc := range []struct {
		name   string
		key    []byte
		read   []string
		status int
	}{
		{"served as PEM", pem, nil, http.StatusOK},
		{"served without a token where reading needs one", pem, []string{"reader-token-0123456789"}, http.StatusOK},
		{"no key configured", nil, nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.SigningKey = tc.key; c.ReadTokens = tc.read })
			rec := f.get("/api/v1/signing-key")
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == http.StatusOK && (rec.Body.String() != string(pem) || rec.Header().Get("Content-Type") != "application/x-pem-file") {
				t.Errorf("body %q type %q", rec.Body, rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestSigningKeyShownInTheUI(t *testing.T) {
	pem := []byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
	for _, tc := range []struct {
		name string
		key  []byte
		want bool
	}{{"with a key", pem, true}, {"without", nil, false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.SigningKey = tc.key })
			body := f.get("/").Body.String()
			if got := strings.Contains(body, `href="/api/v1/signing-key"`); got != tc.want {
				t.Errorf("dashboard links the signing key: %v, want %v", got, tc.want)
			}
		})
	}
}

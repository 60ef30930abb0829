package testgit

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HTTPOptions say how ServeHTTP's server behaves.
type HTTPOptions struct {
	// ProtocolV0 drops the Git-Protocol request header, as HTTP fronts
	// that do not pass it on do, so git http-backend speaks protocol v0:
	// with its default configuration it then refuses a commit by ID that
	// no ref points at (uploadpack.allowReachableSHA1InWant is false).
	ProtocolV0 bool
}

// ServeHTTP serves the repositories below root with the real git
// http-backend (smart HTTP, its default configuration, no system or user
// configuration) until the test ends, and returns the base URL:
// BASE/NAME is the repository root/NAME.
func ServeHTTP(t testing.TB, root string, opts HTTPOptions) string {
	t.Helper()
	Require(t)
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	home := t.TempDir()
	h := &cgi.Handler{
		Path: backend,
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
			"HOME=" + home, "XDG_CONFIG_HOME=" + home, "GIT_CONFIG_NOSYSTEM=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opts.ProtocolV0 {
			r.Header.Del("Git-Protocol")
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Package testimage makes the base image that container tests build
// from: no public registry can be reached where cccp's tests run, so the
// base is a static busybox imported with podman.
//
// Test Dockerfiles start `FROM localhost/busybox` (see Busybox) or
// `FROM scratch` with `COPY busybox /bin/busybox` (see CopyBusybox).
package testimage

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Ref is the local name of the base image.
const Ref = "localhost/busybox:latest"

// label marks an image made by this package, so a hand-made
// localhost/busybox with fewer applets is replaced.
const label = "io.cccp.testimage=busybox-v1"

// once guards the import within one test process; it is the only state
// this package keeps.
var once struct {
	sync.Mutex
	done bool
}

// RequireEnv names the environment variable that turns a missing container
// tool into a test failure instead of a skip. `make test` sets it: it
// installs the tools first (hack/install-deps.sh), so there a missing tool
// is a broken machine, and a skipped container test must not pass as if
// it had run.
const RequireEnv = "CCCP_TEST_REQUIRE_CONTAINERS"

// missing skips the test for the reason given, or fails it when RequireEnv
// is set.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s, and %s is set: this run must not skip container tests (make test installs the tools first)", why, RequireEnv)
	}
	t.Skipf("%s: skipped (with %s=1 this is a failure)", why, RequireEnv)
}

// Require skips the test when podman, buildah or runc is not installed (it
// fails it under RequireEnv).
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"podman", "buildah", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, "%s is not installed (apt-get install buildah podman runc busybox-static)", tool)
		}
	}
}

// BusyboxBinary returns the path of a static busybox, skipping the test
// when there is none.
func BusyboxBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if out, err := exec.Command("file", "-L", p).Output(); err == nil && bytes.Contains(out, []byte("dynamically linked")) {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	missing(t, "no static busybox (apt-get install busybox-static)")
	return ""
}

// Busybox returns Ref after making sure the image exists in the local
// container storage: /bin/busybox with a link for every applet, PATH=/bin,
// CMD ["sh"]. The image is imported once per process and kept afterwards
// (other tests share it).
func Busybox(t testing.TB) string {
	t.Helper()
	Require(t)
	once.Lock()
	defer once.Unlock()
	if once.done {
		return Ref
	}
	out, err := exec.Command("podman", "image", "inspect", "--format", "{{index .Labels \"io.cccp.testimage\"}}", Ref).Output()
	if err == nil && strings.TrimSpace(string(out)) == "busybox-v1" {
		once.done = true
		return Ref
	}
	bb := BusyboxBinary(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	CopyBusybox(t, filepath.Join(root, "bin"))
	applets, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, a := range strings.Fields(string(applets)) {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	cmd := exec.Command("podman", "import",
		"--change", "ENV PATH=/bin",
		"--change", `CMD ["sh"]`,
		"--change", "LABEL "+label,
		tarball, Ref)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman import: %v: %s", err, out)
	}
	once.done = true
	return Ref
}

// CopyBusybox copies the static busybox into dir (a build context, for a
// `FROM scratch` + `COPY busybox /bin/busybox` Dockerfile).
func CopyBusybox(t testing.TB, dir string) {
	t.Helper()
	src := BusyboxBinary(t)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// PushBusybox pushes the base image to registryHost (plain HTTP allowed)
// as busybox:latest and returns the pushed reference. user may be empty
// for a registry without authentication.
func PushBusybox(t testing.TB, registryHost, user, pass string) string {
	t.Helper()
	Busybox(t)
	ref := fmt.Sprintf("%s/busybox:latest", registryHost)
	args := []string{"push", "--tls-verify=false"}
	if user != "" {
		authFile := filepath.Join(t.TempDir(), "auth.json")
		auth := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, registryHost, basicAuth(user, pass))
		if err := os.WriteFile(authFile, []byte(auth), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--authfile", authFile)
	}
	args = append(args, Ref, "docker://"+ref)
	if out, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
		t.Fatalf("podman push %s: %v: %s", ref, err, out)
	}
	return ref
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// Registry starts go-containerregistry's in-memory registry on a loopback
// httptest server (plain HTTP) for the test and returns its host:port.
// With a non-empty user, every request needs HTTP basic authentication
// with user and pass.
func Registry(t testing.TB, user, pass string) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="cccp-test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

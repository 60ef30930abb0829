package checks

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/testimage"
)

// configImage commits the busybox base with buildah config changes (no
// build step) and removes it after the test.
func configImage(t *testing.T, configArgs ...string) string {
	t.Helper()
	base := testimage.Busybox(t)
	name := fmt.Sprintf("localhost/cccp-test/checks-%d:t", time.Now().UnixNano())
	out, err := exec.Command("buildah", "from", "--pull-never", base).Output()
	if err != nil {
		t.Fatalf("buildah from: %v", err)
	}
	ctr := strings.TrimSpace(string(out))
	defer exec.Command("buildah", "rm", ctr).Run()
	if out, err := exec.Command("buildah", append(append([]string{"config"}, configArgs...), ctr)...).CombinedOutput(); err != nil {
		t.Fatalf("buildah config: %v: %s", err, out)
	}
	if out, err := exec.Command("buildah", "commit", "--quiet", ctr, name).CombinedOutput(); err != nil {
		t.Fatalf("buildah commit: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("buildah", "rmi", name).Run() })
	return name
}

func newSuite(t *testing.T) *Suite {
	prefix := fmt.Sprintf("cccp-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		out, _ := exec.Command("podman", "ps", "-a", "--filter", "name="+prefix, "--format", "{{.Names}}").Output()
		if left := strings.TrimSpace(string(out)); left != "" {
			t.Errorf("containers left behind: %s", left)
			exec.Command("podman", "rm", "-f", left).Run()
		}
	})
	return &Suite{Containers: &podman.Runner{}, NamePrefix: prefix, Settle: 500 * time.Millisecond}
}

func TestSmoke(t *testing.T) {
	testimage.Require(t)
	tests := []struct {
		name        string
		config      []string
		wantPassed  bool
		wantSummary string
		wantFinding string
	}{
		{name: "long-running entrypoint", config: []string{"--entrypoint", `["sleep","60"]`, "--cmd", ""}, wantPassed: true, wantSummary: "still running"},
		{name: "exits 0", config: []string{"--entrypoint", `["true"]`, "--cmd", ""}, wantPassed: true, wantSummary: "exited 0"},
		{name: "exits 3", config: []string{"--entrypoint", `["sh","-c","echo boom-before-exit; exit 3"]`, "--cmd", ""}, wantSummary: "exited 3", wantFinding: "boom-before-exit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			image := configImage(t, tt.config...)
			s := newSuite(t)
			var log bytes.Buffer
			r, err := s.Smoke(context.Background(), image, 2*time.Second, &log)
			if err != nil {
				t.Fatalf("Smoke: %v\n%s", err, log.String())
			}
			if r.Passed != tt.wantPassed || !strings.Contains(r.Summary, tt.wantSummary) ||
				(tt.wantFinding != "" && !strings.Contains(strings.Join(r.Findings, "\n"), tt.wantFinding)) {
				t.Errorf("result = %+v\nlog:\n%s", r, log.String())
			}
		})
	}
}

// boxSuite is a suite whose containers and scripts run in a real sandbox
// box, with images copied into the box's storage.
func boxSuite(t *testing.T, images ...string) *Suite {
	t.Helper()
	s := &Suite{NamePrefix: fmt.Sprintf("cccp-test-%d", time.Now().UnixNano()), Settle: 500 * time.Millisecond}
	boxed(t, s, images...)
	return s
}

// boxed moves s into a real sandbox box: its containers run by the box's
// podman service (images copied there from cccp's storage) and its user
// script in the box. It returns the box's podman.
func boxed(t testing.TB, s *Suite, images ...string) *podman.Runner {
	t.Helper()
	sb, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatalf("sandbox (hack/install-deps.sh, as root): %v", err)
	}
	box, err := sb.Open(context.Background(), "checks-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := box.Close(); err != nil {
			t.Errorf("close box: %v", err)
		}
	})
	pod, err := box.Podman(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range images {
		tar := filepath.Join(t.TempDir(), "img.tar")
		if out, err := exec.Command("podman", "save", "-o", tar, img).CombinedOutput(); err != nil {
			t.Fatalf("save %s: %v: %s", img, err, out)
		}
		if out, err := exec.Command("podman", append(pod.GlobalArgs(), "load", "-i", tar)...).CombinedOutput(); err != nil {
			t.Fatalf("load %s: %v: %s", img, err, out)
		}
	}
	s.Containers, s.Scripts = pod, box
	return pod
}

func TestUserScript(t *testing.T) {
	testimage.Require(t)
	long := configImage(t, "--entrypoint", `["sleep","60"]`, "--cmd", "")
	oneShot := configImage(t, "--entrypoint", `["sh","-c","exit 3"]`, "--cmd", "")
	const script = `#!/bin/sh
set -e
echo "testing $IMAGE_NAME in $CONTAINER_NAME from $(pwd)"
test -f marker
podman exec "$CONTAINER_NAME" cat /etc/passwd | grep -q '^root:'
if [ -f want-fail ]; then echo "assertion failed: service not ready" >&2; exit 7; fi
`
	tests := []struct {
		name        string
		image       string
		fail        bool
		exec        bool
		wantPassed  bool
		wantSummary string
	}{
		{name: "passes with a running container", image: long, exec: true, wantPassed: true, wantSummary: "passed"},
		{name: "one-shot entrypoint gets a sleep container", image: oneShot, wantPassed: true, wantSummary: "passed"},
		{name: "non-zero exit fails", image: long, fail: true, exec: true, wantSummary: "exited 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mode := os.FileMode(0o644) // run with /bin/sh
			if tt.exec {
				mode = 0o755
			}
			if err := os.WriteFile(filepath.Join(dir, "test.sh"), []byte(script), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.fail {
				os.WriteFile(filepath.Join(dir, "want-fail"), nil, 0o644)
			}
			s := boxSuite(t, tt.image)
			var log bytes.Buffer
			r, err := s.UserScript(context.Background(), "test.sh", dir, tt.image, &log)
			if err != nil {
				t.Fatalf("UserScript: %v\n%s", err, log.String())
			}
			if r.Passed != tt.wantPassed || !strings.Contains(r.Summary, tt.wantSummary) {
				t.Errorf("result = %+v\nlog:\n%s", r, log.String())
			}
			if !strings.Contains(log.String(), "testing "+tt.image+" in "+s.NamePrefix+"-test-") {
				t.Errorf("script did not see IMAGE_NAME/CONTAINER_NAME:\n%s", log.String())
			}
			if tt.fail && !strings.Contains(strings.Join(r.Findings, "\n"), "service not ready") {
				t.Errorf("findings %q lack the script's last output", r.Findings)
			}
		})
	}

	t.Run("missing script fails", func(t *testing.T) {
		s := boxSuite(t)
		r, err := s.UserScript(context.Background(), "nope.sh", t.TempDir(), long, &bytes.Buffer{})
		if err != nil || r.Passed || !strings.Contains(r.Summary, "nope.sh") {
			t.Errorf("result = %+v, %v", r, err)
		}
	})
}

func TestScansOnBusybox(t *testing.T) {
	image := testimage.Busybox(t)
	s := newSuite(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		check func(context.Context, string, *bytes.Buffer) (Result, error)
		want  string
	}{
		{name: "package updates", check: func(c context.Context, i string, l *bytes.Buffer) (Result, error) { return s.PackageUpdates(c, i, l) }, want: "no package manager"},
		{name: "rpm verify", check: func(c context.Context, i string, l *bytes.Buffer) (Result, error) { return s.RPMVerify(c, i, l) }, want: "not an RPM image"},
		{name: "language packages", check: func(c context.Context, i string, l *bytes.Buffer) (Result, error) { return s.LangPackages(c, i, l) }, want: "no pip, npm or gem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			r, err := tt.check(ctx, image, &log)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Passed || !r.Skipped || !strings.Contains(r.Summary, tt.want) {
				t.Errorf("result = %+v\nlog: %s", r, log.String())
			}
		})
	}
}

// TestScanFindsApkUpdates gives the busybox image an `apk` that prints
// what apk prints, to drive the scan end to end through podman.
func TestScanFindsApkUpdates(t *testing.T) {
	image := configImage(t) // plain copy of the base
	dir := t.TempDir()
	apk := "#!/bin/sh\necho 'Installed:                                Available:'\necho 'musl-1.2.4-r2                           < 1.2.4-r3'\n"
	if err := os.WriteFile(filepath.Join(dir, "apk"), []byte(apk), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSuite(t)
	s.Containers = mountRunner{Runner: &podman.Runner{}, mount: filepath.Join(dir, "apk") + ":/bin/apk:ro"}
	var log bytes.Buffer
	r, err := s.PackageUpdates(context.Background(), image, &log)
	if err != nil {
		t.Fatal(err)
	}
	if r.Passed || len(r.Findings) != 1 || r.Findings[0] != "musl-1.2.4-r2 < 1.2.4-r3" {
		t.Errorf("result = %+v\nlog: %s", r, log.String())
	}
}

// mountRunner adds a bind mount to every run (see TestScanFindsApkUpdates).
type mountRunner struct {
	*podman.Runner
	mount string
}

func (m mountRunner) Run(ctx context.Context, opts podman.RunOptions) (int, error) {
	opts.Volumes = append(opts.Volumes, m.mount)
	return m.Runner.Run(ctx, opts)
}

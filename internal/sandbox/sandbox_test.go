package sandbox

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/testimage"
)

// newSandbox makes a sandbox with the real sandbox user (created by
// hack/install-deps.sh) and small limits.
func newSandbox(t *testing.T, l Limits) *Sandbox {
	t.Helper()
	s, err := New(Config{Limits: l, Scope: "test"})
	if err != nil {
		t.Fatalf("sandbox (run hack/install-deps.sh as root): %v", err)
	}
	return s
}

func openBox(t *testing.T, s *Sandbox) *Box {
	t.Helper()
	b, err := s.Open(context.Background(), "test-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// cccpFiles is a stand-in for cccp's DATA: 0700 root, with the files a
// script must not see, and a secret in cccp's own environment.
type cccpFiles struct {
	data, secret string
}

func makeData(t *testing.T) cccpFiles {
	t.Helper()
	data := t.TempDir()
	os.Chmod(data, 0o700)
	secret := "s3cret-" + strings.ReplaceAll(t.Name(), "/", "-")
	for _, f := range []string{"registry/credentials", "cccp.db", "github-app.pem", "config.yaml"} {
		p := filepath.Join(data, f)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CCCP_TEST_SECRET", secret)
	return cccpFiles{data: data, secret: secret}
}

func checkout(t *testing.T, script string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	os.Mkdir(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "test.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestHostileScript: a script tries to read cccp's files, environment and
// processes, list DATA, write outside its checkout and reach a loopback
// listener. None of it works, and its own checkout is writable.
func TestHostileScript(t *testing.T) {
	s := newSandbox(t, Limits{Pids: 128})
	b := openBox(t, s)
	d := makeData(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	hostTmp := filepath.Join(os.TempDir(), "cccp-sandbox-escape-"+d.secret)
	script := `#!/bin/sh
D=` + d.data + `
for f in $D/registry/cred""entials $D/cccp"".db $D/github-app"".pem $D/config"".yaml /proc/1/environ /proc/$PPID/environ /proc/*/environ; do
  echo "== read"; cat "$f" 2>/dev/null; echo
done
echo "== ls"; ls -la $D $D/registry 2>/dev/null
echo "== ps"; ls /proc
echo "== env"; env
echo "== write"; echo x > ` + hostTmp + `; echo x > $D/written 2>/dev/null; echo ok > /src/own-file
echo "== net"; busybox nc -w 2 127.0.0.1 ` + portOf(ln) + ` </dev/null && echo CONNECTED
busybox wget -T 2 -q -O- http://127.0.0.1:` + portOf(ln) + `/ && echo FETCHED
echo "== id"; id
exit 0
`
	var out bytes.Buffer
	res, err := b.Run(context.Background(), Script{Checkout: checkout(t, script), Argv: []string{"test.sh"},
		Env: []string{"IMAGE_NAME=img", "CONTAINER_NAME=ctr"}, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("script output:\n%s", out.String())
	if res.ExitCode != 0 {
		t.Errorf("exit %d (%s)", res.ExitCode, res.Reason)
	}
	for _, leak := range []string{d.secret, "credentials", "cccp.db", "github-app.pem", "config.yaml", "CONNECTED", "FETCHED", "uid=0"} {
		if strings.Contains(out.String(), leak) {
			t.Errorf("output shows %q", leak)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the loopback listener got %d connections", n)
	}
	if _, err := os.Stat(hostTmp); err == nil {
		os.Remove(hostTmp)
		t.Errorf("the script wrote %s on the host", hostTmp)
	}
	if _, err := os.Stat(filepath.Join(d.data, "written")); err == nil {
		t.Errorf("the script wrote into DATA")
	}
	for _, want := range []string{"IMAGE_NAME=img", "CONTAINER_NAME=ctr", "HOME=/home/sandbox", "TMPDIR=/tmp"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("environment lacks %s", want)
		}
	}
}

func portOf(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// TestLimits: a fork bomb meets the process limit, a script that sleeps
// forever with children in the background (one in a new session) is
// ended at the deadline with its whole tree, and nothing of it is left.
func TestLimits(t *testing.T) {
	s := newSandbox(t, Limits{Pids: 64, Memory: 256 << 20})
	for _, tc := range []struct {
		name, script string
		timeout      time.Duration
		reason       string
	}{
		{"fork bomb", "#!/bin/sh\nb() { b | b & }; b; wait; sleep 3\n", 20 * time.Second, "process limit (64) reached"},
		{"sleep forever", "#!/bin/sh\n(sleep 100000 &)\nsetsid sleep 100000 &\nnohup sleep 100000 >/dev/null 2>&1 &\nexec sleep 100000\n", 2 * time.Second, "deadline exceeded"},
		{"memory", "#!/bin/sh\nexec busybox sh -c 'x=a; while :; do x=$x$x; done'\n", 30 * time.Second, "memory limit (268435456 bytes) reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBox(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			start := time.Now()
			res, err := b.Run(ctx, Script{Checkout: checkout(t, tc.script), Argv: []string{"test.sh"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: exit %d, reason %q after %s", tc.name, res.ExitCode, res.Reason, time.Since(start).Round(time.Millisecond))
			if res.Reason != tc.reason {
				t.Errorf("reason %q, want %q; tail %q", res.Reason, tc.reason, res.Tail)
			}
			if left := b.Procs(); len(left) != 0 {
				t.Errorf("processes left in the box after the script: %v", describe(left))
			}
		})
	}
}

func describe(pids []int) []string {
	var out []string
	for _, p := range pids {
		cmd, _ := os.ReadFile("/proc/" + itoa(p) + "/cmdline")
		out = append(out, itoa(p)+":"+strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// busyboxTar makes a busybox root file system as a tarball.
func busyboxTar(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static (hack/install-deps.sh): %v", err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs", "bin")
	os.MkdirAll(root, 0o755)
	data, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(root, "busybox"), data, 0o755)
	for _, a := range []string{"sh", "sleep", "nc", "cat", "ls", "id"} {
		os.Symlink("busybox", filepath.Join(root, a))
	}
	tar := filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "rootfs"), "-cf", tar, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	os.Chmod(dir, 0o755)
	return tar
}

// TestBoxContainers: a script reaches its own box's container with
// podman exec, sees no other box's container, and a container it starts
// with --network host still cannot reach a loopback listener of the host.
// Close leaves no process and no storage.
func TestBoxContainers(t *testing.T) {
	s := newSandbox(t, Limits{})
	tar := busyboxTar(t)
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()

	start := func(name string) (*Box, string) {
		b, err := s.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WriteRegistriesConf(nil); err != nil {
			t.Fatal(err)
		}
		pod, err := b.Podman(ctx)
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		imp := exec.Command("podman", append(pod.GlobalArgs(), "import", tar, "localhost/bb:box")...)
		if out, err := imp.CombinedOutput(); err != nil {
			b.Close()
			t.Fatalf("import: %v: %s", err, out)
		}
		ctr := "cccp-check-test-" + name
		if _, err := pod.Run(ctx, podmanRun(ctr)); err != nil {
			b.Close()
			t.Fatalf("run: %v", err)
		}
		return b, ctr
	}
	a, ctrA := start("a")
	other, ctrB := start("b")
	defer other.Close()

	script := `#!/bin/sh
echo "== ps"; podman ps -a --format '{{.Names}}'
echo "== exec"; podman --runtime runc exec "$CONTAINER_NAME" id
echo "== other"; podman exec ` + ctrB + ` id && echo REACHED-OTHER
echo "== host net"; podman run --rm --network host --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 localhost/bb:box nc -w 2 127.0.0.1 ` + portOf(ln) + ` </dev/null && echo CONNECTED
exit 0
`
	var out bytes.Buffer
	res, err := a.Run(ctx, Script{Checkout: checkout(t, script), Argv: []string{"test.sh"}, Podman: true,
		Env: []string{"CONTAINER_NAME=" + ctrA}, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exit %d; output:\n%s", res.ExitCode, out.String())
	got := out.String()
	if !strings.Contains(got, "== ps\n"+ctrA+"\n== exec\nuid=0 ") {
		t.Errorf("the script did not see exactly its own container and exec into it")
	}
	for _, bad := range []string{"REACHED-OTHER", "CONNECTED", ctrB + "\n"} {
		if strings.Contains(got, bad) {
			t.Errorf("output shows %q", bad)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("loopback listener got %d connections", n)
	}
	if len(a.Procs()) == 0 {
		t.Errorf("no process in the box while its podman service runs: the cgroup does not hold it")
	}
	dir := a.dir
	if err := a.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if left := a.Procs(); len(left) != 0 {
		t.Errorf("left after close: %v", describe(left))
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("box folder %s left after close", dir)
	}
	if ps, _ := exec.Command("pgrep", "-f", dir).Output(); len(ps) > 0 {
		t.Errorf("processes naming the box left: %s", ps)
	}
}

func podmanRun(name string) podman.RunOptions {
	return podman.RunOptions{Image: "localhost/bb:box", Name: name, Detach: true, Network: "none",
		Entrypoint: []string{"sleep"}, Cmd: []string{"100000"}}
}

// TestBoxPull: the box pulls from a plain-HTTP registry on loopback named
// insecure in its registries.conf, and refuses it (TLS verified) when it is
// not named.
func TestBoxPull(t *testing.T) {
	s := newSandbox(t, Limits{})
	host := testimage.Registry(t, "", "")
	ref := testimage.PushBusybox(t, host, "", "")
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		insecure []string
		ok       bool
	}{
		{"named insecure", []string{host}, true},
		{"not named", []string{"127.0.0.1:1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBox(t, s)
			if err := b.WriteRegistriesConf(tc.insecure); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Podman(ctx); err != nil {
				t.Fatal(err)
			}
			err := b.Puller().Pull(ctx, ref, true)
			if (err == nil) != tc.ok {
				t.Fatalf("pull %s: %v, want ok=%v", ref, err, tc.ok)
			}
			if !tc.ok && !strings.Contains(err.Error(), "http") {
				t.Errorf("error does not say why: %v", err)
			}
		})
	}
}

// BenchmarkBox is what a sandbox adds to a stage: a box opened with its
// podman service started and closed (open-service), and a script that
// does nothing run in an open box (script).
func BenchmarkBox(b *testing.B) {
	s, err := New(Config{Scope: "bench"})
	if err != nil {
		b.Fatalf("sandbox (run hack/install-deps.sh as root): %v", err)
	}
	ctx := context.Background()
	b.Run("open-service-close", func(b *testing.B) {
		for b.Loop() {
			box, err := s.Open(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := box.Podman(ctx); err != nil {
				b.Fatal(err)
			}
			if err := box.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("script", func(b *testing.B) {
		box, err := s.Open(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		defer box.Close()
		dir := filepath.Join(b.TempDir(), "src")
		os.Mkdir(dir, 0o755)
		for b.Loop() {
			if res, err := box.Run(ctx, Script{Checkout: dir, Argv: []string{"/bin/true"}}); err != nil || res.ExitCode != 0 {
				b.Fatalf("%+v %v", res, err)
			}
		}
	})
}

// TestBoxFromPrivateWorkingDirectory: cccp may run in a folder the sandbox
// user cannot enter (a relative --data below a 0700 folder); the box's
// podman does not start there.
func TestBoxFromPrivateWorkingDirectory(t *testing.T) {
	s := newSandbox(t, Limits{})
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	t.Chdir(dir)
	b := openBox(t, s)
	if err := b.WriteRegistriesConf(nil); err != nil {
		t.Fatal(err)
	}
	pod, err := b.Podman(context.Background())
	if err != nil {
		t.Fatalf("podman service: %v", err)
	}
	if err := b.Puller().Pull(context.Background(), "127.0.0.1:1/none:x", true); err == nil || strings.Contains(err.Error(), "chdir") {
		t.Errorf("pull from a private working directory: %v", err)
	}
	if _, err := pod.ImageLabels(context.Background(), "none"); err != nil && strings.Contains(err.Error(), "chdir") {
		t.Errorf("podman through the service: %v", err)
	}
}

// TestBoxTestNetwork: with ServiceOnHostNetwork (cccp.yaml test-network:
// true) a container of the box gets a network of its own (rootless
// slirp4netns).
func TestBoxTestNetwork(t *testing.T) {
	s := newSandbox(t, Limits{})
	tar := busyboxTar(t)
	ctx := context.Background()
	b := openBox(t, s)
	b.ServiceOnHostNetwork = true
	if err := b.WriteRegistriesConf(nil); err != nil {
		t.Fatal(err)
	}
	pod, err := b.Podman(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("podman", append(pod.GlobalArgs(), "import", tar, "localhost/bb:box")...).CombinedOutput(); err != nil {
		t.Fatalf("import: %v: %s", err, out)
	}
	var out bytes.Buffer
	code, err := pod.Run(ctx, podman.RunOptions{Image: "localhost/bb:box", Remove: true, Network: "slirp4netns",
		Entrypoint: []string{"sh", "-c"}, Cmd: []string{"cat /proc/net/dev"}, Log: &out})
	if err != nil || code != 0 {
		t.Fatalf("run: %d %v\n%s", code, err, out.String())
	}
	if !strings.Contains(out.String(), "tap0") {
		t.Errorf("no slirp4netns interface in the container:\n%s", out.String())
	}
}

// TestNewRefusesWithoutProcessTracking: without the pids or freezer cgroup,
// Close could not find what a script started, so New fails closed.
func TestNewRefusesWithoutProcessTracking(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o711) // the users can pass on the way
	_, err := New(Config{Scope: "test", CgroupRoot: notADir, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "neither the pids nor the freezer") {
		t.Fatalf("New with no usable cgroup = %v; want a refusal naming the controllers", err)
	}
}

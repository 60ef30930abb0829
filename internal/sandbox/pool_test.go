package sandbox

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/idpool"
)

// TestTwoBoxesDoNotShareAUser: two boxes open at the same time run as two
// different users. A container of one, started through its podman service
// with the host's PID namespace and the other box's folder bound in, can
// neither signal the other's container nor read the other's files (one
// user for every box allowed both).
func TestTwoBoxesDoNotShareAUser(t *testing.T) {
	s := newSandbox(t, Limits{})
	if len(s.users) < 2 {
		t.Fatalf("sandbox pool has %d users (%v), want at least 2 (hack/install-deps.sh creates 4)", len(s.users), s.Users())
	}
	tar := busyboxTar(t)
	ctx := context.Background()
	start := func(name string) (*Box, []string) {
		b := openBox(t, s)
		if err := b.WriteRegistriesConf(nil); err != nil {
			t.Fatal(err)
		}
		pod, err := b.Podman(ctx)
		if err != nil {
			t.Fatal(err)
		}
		imp := exec.Command("podman", append(pod.GlobalArgs(), "import", tar, "localhost/bb:box")...)
		if out, err := imp.CombinedOutput(); err != nil {
			t.Fatalf("import: %v: %s", err, out)
		}
		if _, err := pod.Run(ctx, podmanRun("cccp-check-pool-"+name)); err != nil {
			t.Fatalf("run: %v", err)
		}
		return b, pod.GlobalArgs()
	}
	a, _ := start("a")
	b, podB := start("b")

	ua, _ := a.UID()
	ub, _ := b.UID()
	if ua == ub {
		t.Errorf("both boxes run as uid %d", ua)
	}
	// A's container process, as the host sees it, and a file of A's.
	sleeper := 0
	for _, pid := range a.Procs() {
		if cmd, _ := os.ReadFile("/proc/" + itoa(pid) + "/cmdline"); strings.HasPrefix(string(cmd), "sleep\x00100000") {
			sleeper = pid
		}
	}
	if sleeper == 0 {
		t.Fatalf("no container process in box a: %v", describe(a.Procs()))
	}
	if uid := statusUID(t, sleeper); uid != ua {
		t.Errorf("box a's container runs as host uid %d, want its user's %d", uid, ua)
	}
	secret := "pool-secret-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.WriteFile(filepath.Join(a.dir, "home", "secret"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(a.dir, "home", "secret"), int(ua), -1)

	// Each attempt in a container of its own: a refused bind mount must
	// not keep the signal from being tried.
	runB := func(extra []string, script string) string {
		args := append(append(append([]string{}, podB...), "run", "--rm", "--network", "none",
			"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"), extra...)
		args = append(args, "localhost/bb:box", "sh", "-c", script)
		out, err := exec.Command("podman", args...).CombinedOutput()
		t.Logf("box b's container %v: %v\n%s", extra, err, out)
		return string(out)
	}
	out := runB([]string{"--pid", "host"}, "kill -0 "+itoa(sleeper)+" && echo SIGNALLED; kill -9 "+itoa(sleeper)+"; echo tried")
	if !strings.Contains(out, "tried") {
		t.Errorf("box b's container did not run its signal attempt")
	}
	if strings.Contains(out, "SIGNALLED") {
		t.Errorf("box b's container signalled box a's container")
	}
	out = runB([]string{"-v", a.dir + ":/a"}, "cat /a/home/secret")
	if strings.Contains(out, secret) {
		t.Errorf("box b's container read box a's file")
	}
	if err := syscall0(sleeper); err != nil {
		t.Errorf("box a's container is gone: %v", err)
	}
}

// TestOpenWaitsForAFreeUser: with every user of the pool in a box, Open
// waits; a Close lets it through with the user given back.
func TestOpenWaitsForAFreeUser(t *testing.T) {
	s := newSandbox(t, Limits{})
	s.cfg.Pool = 1
	s.users = s.users[:1]
	var err error
	// A pool of the first user alone.
	if s.pool, err = newTestPool(t, s); err != nil {
		t.Fatal(err)
	}
	first, err := s.Open(context.Background(), "first")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if b, err := s.Open(short, "second"); !errors.Is(err, context.DeadlineExceeded) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("second Open with the only user in use = %v, want to wait until the deadline", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := s.Open(context.Background(), "second")
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	second.Close()
}

func statusUID(t *testing.T, pid int) uint32 {
	t.Helper()
	f, err := os.Open("/proc/" + itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			n, _ := strconv.ParseUint(strings.Fields(v)[0], 10, 32)
			return uint32(n)
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return 0
}

// syscall0 tells whether pid still exists (signal 0 from root).
func syscall0(pid int) error { return syscall.Kill(pid, 0) }

// newTestPool is a pool of the sandbox's first user alone, on the
// machine's lock folder: other tests' boxes may hold the user meanwhile.
func newTestPool(t *testing.T, s *Sandbox) (*idpool.Cleared, error) {
	p, err := idpool.New("", []string{"sandbox-user-" + s.users[0].name})
	if err != nil {
		return nil, err
	}
	return idpool.NewCleared(p, []idpool.IDs{s.users[0].ids()}, nil, 0)
}

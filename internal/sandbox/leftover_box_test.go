package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runAs runs sh -c script as uid:gid outside any box: what a box user
// can run outside bubblewrap (its podman service, a container with a host
// folder bound in).
func runAs(t *testing.T, uid, gid uint32, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as uid %d: %s: %v: %s", uid, script, err, out)
	}
}

func randName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestCloseRemovesWhatTheUserLeft: files a box's user made in the host's
// /tmp, /var/tmp, /dev/shm and its home, and one its container's user (a
// subordinate uid) made in /tmp, are gone when the box is closed, before
// the next box gets the user; a folder of the layout of before
// (<home>/b) goes too. Root's files there stay.
func TestCloseRemovesWhatTheUserLeft(t *testing.T) {
	s := newSandbox(t, Limits{})
	b, err := s.Open(context.Background(), "leftovers")
	if err != nil {
		t.Fatal(err)
	}
	u := b.user
	n := randName("cccp-leftover-")
	left := []string{
		filepath.Join("/tmp", n),
		filepath.Join("/tmp", n, "secret"),
		filepath.Join("/var/tmp", n),
		filepath.Join("/dev/shm", n),
		filepath.Join(u.home, n),
		filepath.Join(u.home, "b", "test-0123abcd", "storage", "secret"),
		filepath.Join("/tmp", n+"-container"),
	}
	runAs(t, u.uid, u.gid, "set -e; umask 077; mkdir "+left[0]+"; echo repo-a > "+left[1]+"; echo repo-a > "+left[2]+
		"; echo repo-a > "+left[3]+"; echo repo-a > "+left[4]+"; mkdir -p "+filepath.Dir(left[5])+"; echo repo-a > "+left[5])
	runAs(t, u.subUID.Start+1000, u.subGID.Start+1000, "echo repo-a > "+left[6])
	rootFile := filepath.Join("/tmp", n+"-root")
	os.WriteFile(rootFile, []byte("cccp's\n"), 0o600)
	defer os.Remove(rootFile)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range left {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s, of box user %s, is left after Close", p, u.name)
			os.RemoveAll(p)
		}
	}
	if _, err := os.Stat(rootFile); err != nil {
		t.Errorf("root's %s was removed: %v", rootFile, err)
	}
}

// TestOpenKillsWhatRunsAsItsUser: a process left running as a sandbox
// user, or as one of its subordinate ids (a crashed cccp's box, of any
// Scope), is killed before a box gets the user.
func TestOpenKillsWhatRunsAsItsUser(t *testing.T) {
	s := newSandbox(t, Limits{})
	type left struct {
		pid  int
		done chan struct{}
	}
	start := func(uid, gid uint32) left {
		cmd := exec.Command("sleep", "1000")
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}, Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-done })
		return left{cmd.Process.Pid, done}
	}
	// One of each for every user: which one Open hands out is not known.
	byUID := map[uint32][]left{}
	for _, u := range s.users {
		byUID[u.uid] = []left{start(u.uid, u.gid), start(u.subUID.Start, u.subGID.Start)}
	}
	b := openBox(t, s)
	uid, _ := b.UID()
	for i, l := range byUID[uid] {
		select {
		case <-l.done:
		case <-time.After(10 * time.Second): // only a failing test waits this long
			t.Errorf("process %d (%s) of the box's user %d still runs after Open", l.pid, []string{"its uid", "a subordinate uid"}[i], uid)
		}
	}
}

// TestCleanupSweepsUsersNoBoxHolds: Cleanup kills what runs as a user no
// box holds and removes what it left, the box folders of the layout of
// before (<home>/b) included, and a box folder a crashed cccp (of another
// Scope) left, with a checkout still bound in: detached, not gone
// through.
func TestCleanupSweepsUsersNoBoxHolds(t *testing.T) {
	s := newSandbox(t, Limits{})
	n := randName("cccp-sweep-")
	outside := t.TempDir()
	keep := filepath.Join(outside, "keep")
	os.WriteFile(keep, []byte("a checkout's file\n"), 0o644)
	var planted, boxes []string
	for _, u := range s.users {
		p := filepath.Join(u.home, "b", "test-0123abcd", n)
		runAs(t, u.uid, u.gid, "mkdir -p "+filepath.Dir(p)+" && echo old > "+p)
		planted = append(planted, p)
		t.Cleanup(func() { os.Remove(p) }) // a user in a box meanwhile is not swept
		box := filepath.Join(u.dir, randName("othr-"))
		if err := mkdirRoot(box); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"storage", "src"} {
			if err := mkdirFor(filepath.Join(box, d), u.uid, u.gid); err != nil {
				t.Fatal(err)
			}
		}
		runAs(t, u.uid, u.gid, "echo image > "+filepath.Join(box, "storage", "layer"))
		src := filepath.Join(box, "src")
		if err := syscall.Mount(outside, src, "", syscall.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Unmount(src, syscall.MNT_DETACH); os.RemoveAll(box) })
		boxes = append(boxes, box)
	}
	swept, err := s.sweep()
	if err != nil {
		t.Fatal(err)
	}
	if len(swept) == 0 {
		t.Fatal("no user swept: every one was in a box")
	}
	for i, u := range s.users {
		_, err := os.Lstat(planted[i])
		switch in := contains(swept, u.name); {
		case in && err == nil:
			t.Errorf("%s is left after the sweep of %s", planted[i], u.name)
		case !in:
			t.Logf("user %s was in a box meanwhile: not swept", u.name)
			continue
		}
		if _, err := os.Lstat(boxes[i]); err == nil {
			t.Errorf("box folder %s, of a crashed cccp, is left after the sweep of %s", boxes[i], u.name)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the sweep went through a bound checkout: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCheckoutOutlivesTheBox: a checkout outlives the box that ran in it
// (the build reads it after the prebuild's box is closed), though it is
// the box user's; one where closing a box would remove it (in a folder
// anyone may write) is refused before anything runs.
func TestCheckoutOutlivesTheBox(t *testing.T) {
	s := newSandbox(t, Limits{})
	shared := t.TempDir()
	os.Chmod(shared, 0o1777)
	for _, tt := range []struct {
		name   string
		parent string
		err    string
	}{
		{"in cccp's folder", t.TempDir(), ""},
		{"in a folder anyone may write", shared, "a folder anyone may write"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			co := filepath.Join(tt.parent, "co")
			os.Mkdir(co, 0o755)
			os.WriteFile(filepath.Join(co, "test.sh"), []byte("echo made > out\n"), 0o755)
			b, err := s.Open(context.Background(), "checkout")
			if err != nil {
				t.Fatal(err)
			}
			res, err := b.Run(context.Background(), Script{Checkout: co, Argv: []string{"/bin/sh", "test.sh"}})
			if cerr := b.Close(); cerr != nil {
				t.Fatal(cerr)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Run = %+v, %v; want refused with %q", res, err, tt.err)
				}
				return
			}
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run = %+v, %v", res, err)
			}
			if dt, err := os.ReadFile(filepath.Join(co, "out")); err != nil || string(dt) != "made\n" {
				t.Errorf("the checkout's file after Close: %q, %v", dt, err)
			}
		})
	}
}

// TestContainerFilesInHostFoldersGoWithTheBox: a container that a box's
// podman service runs with the host's /tmp and /dev/shm bound in writes
// there as the box's user (rootless root) and as a subordinate uid (its
// user 1000); those files are gone when the box is closed, so the next
// repository whose box gets the user cannot read them.
func TestContainerFilesInHostFoldersGoWithTheBox(t *testing.T) {
	s := newSandbox(t, Limits{})
	tar := busyboxTar(t)
	ctx := context.Background()
	b, err := s.Open(ctx, "container-leftovers")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			b.Close()
		}
	}()
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
	n := randName("cccp-ctr-")
	left := []string{filepath.Join("/tmp", n), filepath.Join("/dev/shm", n), filepath.Join("/tmp", n+"-u1000")}
	for _, c := range []struct{ user, script string }{
		{"0", "echo repo-a > /h/tmp/" + n + " && echo repo-a > /h/shm/" + n},
		{"1000", "echo repo-a > /h/tmp/" + n + "-u1000"},
	} {
		args := append(pod.GlobalArgs(), "run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
			"--user", c.user, "-v", "/tmp:/h/tmp", "-v", "/dev/shm:/h/shm", "localhost/bb:box", "sh", "-c", c.script)
		if out, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
			t.Fatalf("container as %s: %v: %s", c.user, err, out)
		}
	}
	for _, p := range left {
		if _, err := os.Lstat(p); err != nil {
			t.Fatalf("the container did not leave %s: %v", p, err)
		}
	}
	closed = true
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range left {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s, made by the box's container, is left after Close", p)
			os.Remove(p)
		}
	}
}

// TestCheckoutInTheUsersHomeIsRefused: a checkout right in the sandbox
// user's home (one of root's, as CCCP_SANDBOX_HOME may name) would be
// removed when the box is closed, as the user's: Run refuses it.
func TestCheckoutInTheUsersHomeIsRefused(t *testing.T) {
	s := newSandbox(t, Limits{})
	b := openBox(t, s)
	home := t.TempDir()
	b.user.home = home // what this box's Close sweeps
	co := filepath.Join(home, "co")
	os.Mkdir(co, 0o755)
	os.WriteFile(filepath.Join(co, "test.sh"), []byte("true\n"), 0o755)
	_, err := b.Run(context.Background(), Script{Checkout: co, Argv: []string{"/bin/sh", "test.sh"}})
	if err == nil || !strings.Contains(err.Error(), "the home of sandbox user") {
		t.Fatalf("Run = %v; want refused: the checkout is in the user's home", err)
	}
}

// TestOpenSweepsWhatTheUserLeft: a user handed out is swept first. A cccp
// that crashed while its box held the user left the user's files (the
// kernel freed the lock without a sweep); the next box, of another
// repository, must not find them (Open only killed processes before).
func TestOpenSweepsWhatTheUserLeft(t *testing.T) {
	s := newSandbox(t, Limits{})
	n := randName("cccp-open-sweep-")
	planted := map[uint32]string{}
	for _, u := range s.users {
		p := filepath.Join("/dev/shm", n+"-"+u.name)
		runAs(t, u.uid, u.gid, "echo secret > "+p)
		planted[u.uid] = p
		t.Cleanup(func() { os.Remove(p) })
	}
	b := openBox(t, s)
	uid, _ := b.UID()
	if _, err := os.Lstat(planted[uid]); err == nil {
		t.Errorf("%s, left by the box's user %d, is still there when the box opens", planted[uid], uid)
	}
}

// TestCloseTwiceGivesTheUserBackOnce: a box's Close lets go of its lease,
// so a second Close cannot give the user back again: that would kill and
// sweep whatever box of any cccp has the user by then. (Checked on the
// lease: which box gets the user next depends on the other processes
// using the pool.)
func TestCloseTwiceGivesTheUserBackOnce(t *testing.T) {
	s := newSandbox(t, Limits{})
	b, err := s.Open(context.Background(), "test-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b.lease != nil {
		t.Fatal("a closed box still holds its user's lease: a second Close would give the user back again")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

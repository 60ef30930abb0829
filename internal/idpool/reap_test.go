package idpool

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// testRanges are two ranges of host ids far above any user's.
func testRanges(t *testing.T) *Ranges {
	t.Helper()
	dir := t.TempDir()
	line := fmt.Sprintf("reap-test:%d:%d\n", 3_900_000_000, 2*RangeSize)
	for _, f := range []string{"subuid", "subgid"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewRanges(RangesConfig{User: "reap-test", SubUID: filepath.Join(dir, "subuid"), SubGID: filepath.Join(dir, "subgid"), Dir: filepath.Join(dir, "locks")})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startAs starts a sleep as uid and gid (this test runs as root) and
// returns a channel closed when it has ended.
func startAs(t *testing.T, uid, gid uint32) (*exec.Cmd, chan struct{}) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs as root: it starts a process as a uid of a range")
	}
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd, done
}

func ended(done chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-time.After(30 * time.Second): // only a failing test waits this long
		return false
	}
}

// TestRangeIsClearedBeforeItIsHandedOut: a process left running as an id
// of a range (a RUN step that outlived its build) is killed before the
// range goes to the next build, whether the id is its uid or only its gid.
func TestRangeIsClearedBeforeItIsHandedOut(t *testing.T) {
	for _, tt := range []struct {
		name     string
		uid, gid uint32
	}{
		{"uid in range", 3_900_000_000 + 7, 65534},
		{"gid in range", 65534, 3_900_000_000 + 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := testRanges(t)
			cmd, done := startAs(t, tt.uid, tt.gid)
			g, err := r.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer g.Release()
			if g.UID != 3_900_000_000 {
				t.Fatalf("got range at uid %d, want the first (3900000000)", g.UID)
			}
			if !ended(done) {
				t.Errorf("process %d (uid %d, gid %d) still runs after its range was handed out", cmd.Process.Pid, tt.uid, tt.gid)
			}
		})
	}
}

// TestReleaseClearsTheRange: what still runs as the range's ids when a
// build gives it back (buildah killed, its container left) is killed.
func TestReleaseClearsTheRange(t *testing.T) {
	r := testRanges(t)
	g, err := r.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, done := startAs(t, g.UID+1000, g.GID+1000)
	if err := g.Release(); err != nil {
		t.Fatal(err)
	}
	if !ended(done) {
		t.Error("a process of the range outlived its release")
	}
}

// BenchmarkInRange is the cost that clearing a range adds to every
// Acquire and Release: one pass over /proc.
func BenchmarkInRange(b *testing.B) {
	for b.Loop() {
		inRange(IDs{UIDs: []Span{{3_900_000_000, RangeSize}}, GIDs: []Span{{3_900_000_000, RangeSize}}})
	}
}

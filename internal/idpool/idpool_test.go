package idpool

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSubIDs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(file, []byte("other:100000:65536\ncccp-build:362144:1048576\nbroken:0:10\nwide:4294967000:1000\n"), 0o644)
	tests := []struct {
		name, user   string
		start, count uint64
		err          string
	}{
		{name: "found", user: "cccp-build", start: 362144, count: 1048576},
		{name: "first of several lines", user: "other", start: 100000, count: 65536},
		{name: "missing", user: "nobody-here", err: "no subordinate ids"},
		{name: "zero start", user: "broken", err: "bad range"},
		{name: "past 32 bits", user: "wide", err: "bad range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, count, err := SubIDs(file, tt.user)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || start != tt.start || count != tt.count {
				t.Fatalf("= %d, %d, %v; want %d, %d", start, count, err, tt.start, tt.count)
			}
		})
	}
}

func TestRangesAreDisjointAndReused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "subuid"), []byte("b:300000:196608\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "subgid"), []byte("b:500000:200000\n"), 0o644)
	r, err := NewRanges(RangesConfig{User: "b", SubUID: filepath.Join(dir, "subuid"), SubGID: filepath.Join(dir, "subgid"), Dir: filepath.Join(dir, "locks")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3 (196608 uids / 65536)", r.Len())
	}
	ctx := context.Background()
	var held []*Range
	for _, want := range []uint32{300000, 365536, 431072} {
		g, err := r.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if g.UID != want || g.GID != want+200000 || g.Size != RangeSize {
			t.Fatalf("range = %d/%d/%d, want uid %d, gid %d", g.UID, g.GID, g.Size, want, want+200000)
		}
		held = append(held, g)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := r.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fourth Acquire = %v, want to wait until the deadline", err)
	}
	held[1].Release()
	g, err := r.Acquire(ctx)
	if err != nil || g.UID != 365536 {
		t.Fatalf("after a release got %+v, %v; want the freed range 365536", g, err)
	}
}

// TestHeldAcrossProcesses: a member another process holds is not handed
// out, and is free again once that process dies without releasing it.
func TestHeldAcrossProcesses(t *testing.T) {
	if os.Getenv("IDPOOL_HOLDER") != "" {
		p, err := New(os.Getenv("IDPOOL_HOLDER"), []string{"a", "b"})
		if err != nil {
			os.Exit(2)
		}
		if _, err := p.Acquire(context.Background()); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHeldAcrossProcesses$")
	cmd.Env = append(os.Environ(), "IDPOOL_HOLDER="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("holder said %q", line)
	}
	p, err := New(dir, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	l, ok, err := p.TryAcquire()
	if err != nil || !ok || l.Key != "b" {
		t.Fatalf("TryAcquire = %+v, %v, %v; want b (a is held by the other process)", l, ok, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l2, ok, err := p.TryAcquire()
	if err != nil || !ok || l2.Key != "a" {
		t.Fatalf("after the holder died: %+v, %v, %v; want a", l2, ok, err)
	}
	l.Release()
	l2.Release()
}

func TestNewRefusesBadKeys(t *testing.T) {
	for _, keys := range [][]string{nil, {"a", "a"}, {"../x"}, {""}} {
		if _, err := New(t.TempDir(), keys); err == nil {
			t.Errorf("New(%q) accepted", keys)
		}
	}
}

// TestNewRefusesAnUnsafeLockFolder: a lock folder others can write (or
// one that is not a folder) would let them replace lock files.
func TestNewRefusesAnUnsafeLockFolder(t *testing.T) {
	writable := t.TempDir()
	os.Chmod(writable, 0o777)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for name, dir := range map[string]string{"world-writable": writable, "a file": file} {
		if _, err := New(dir, []string{"a"}); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: New = %v, want a refusal naming %s", name, err, dir)
		}
	}
}

// TestLockFileIsNeverASymlink: a symlink where a lock file goes is not
// followed (its target neither created nor locked).
func TestLockFileIsNeverASymlink(t *testing.T) {
	dir := t.TempDir()
	p, err := New(dir, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, "a.lock")); err != nil {
		t.Fatal(err)
	}
	if l, ok, err := p.TryAcquire(); err == nil {
		t.Errorf("TryAcquire through a symlinked lock file = %+v, %v; want an error", l, ok)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("the symlink's target %s was created", target)
	}
}

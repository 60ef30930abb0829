package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cccp-project/cccp/internal/idpool"
)

// TestRemoveOwned: in a shared folder, everything a box user (or one of
// its subordinate uids) owns goes, with what is inside, however deep;
// what others own stays, a symlink is removed and never followed, a
// folder mounted on inside is detached and not gone through, and what
// the user put in another's world-writable folder goes too.
func TestRemoveOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test runs as root: it makes files of other uids and mounts")
	}
	const uid, sub = 3_900_000_000, 3_900_100_000
	owned := func(u uint32) bool { return u == uid || u >= sub && u < sub+65536 }
	base := t.TempDir()
	os.Chmod(base, 0o1777)
	outside := t.TempDir() // another's files: a symlink points here, a bind mount shows it
	keepOut := filepath.Join(outside, "keep")
	os.WriteFile(keepOut, []byte("not the box's\n"), 0o644)

	type entry struct {
		path  string
		owner uint32
		kind  string // "dir", "file", "link" (to outside), "mount" (of outside)
		stays bool
	}
	deep := "user-deep"
	for range 150 { // deeper than maxRemoveDepth
		deep = filepath.Join(deep, "d")
	}
	entries := []entry{
		{"user-dir", uid, "dir", false},
		{"user-dir/secret", uid, "file", false},
		{"user-dir/root-file", 0, "file", false}, // inside the user's folder: goes with it
		{"user-dir/sub", uid, "dir", false},
		{"user-dir/sub/to-outside", uid, "link", false},
		{"user-dir/mnt", uid, "dir", false},
		{"user-dir/mnt", 0, "mount", false},
		{"user-file", uid, "file", false},
		{"container-file", sub + 7, "file", false},
		{"user-link", uid, "link", false},
		{"user-deep", uid, "dir", false},
		{deep, uid, "dir", false},
		{filepath.Join(deep, "f"), uid, "file", false},
		{"root-file", 0, "file", true},
		{"other-dir", 1, "dir", true},
		{"other-dir/user-file", uid, "file", true}, // a folder the user could not write
		{"shared", 0, "dir", true},
		{"shared/user-file", uid, "file", false},
		{"shared/root-file", 0, "file", true},
	}
	for _, e := range entries {
		p := filepath.Join(base, e.path)
		var err error
		switch e.kind {
		case "dir":
			err = os.MkdirAll(p, 0o700)
		case "file":
			err = os.WriteFile(p, []byte("x\n"), 0o600)
		case "link":
			err = os.Symlink(outside, p)
		case "mount":
			err = syscall.Mount(outside, p, "", syscall.MS_BIND, "")
			t.Cleanup(func() { syscall.Unmount(p, syscall.MNT_DETACH) })
		}
		if err == nil && e.kind != "mount" {
			err = os.Lchown(p, int(e.owner), int(e.owner))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(base, "shared"), 0o1777)
	os.Chmod(filepath.Join(base, "other-dir"), 0o755)
	// The deep chain's folders are the user's too.
	for p := filepath.Join(base, deep); p != filepath.Join(base, "user-deep"); p = filepath.Dir(p) {
		os.Lchown(p, uid, uid)
	}

	if err := removeOwned(base, owned); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, err := os.Lstat(filepath.Join(base, e.path))
		switch {
		case e.stays && err != nil:
			t.Errorf("%s (uid %d) was removed: %v", e.path, e.owner, err)
		case !e.stays && err == nil:
			t.Errorf("%s (uid %d) is left", e.path, e.owner)
		}
	}
	if dt, err := os.ReadFile(keepOut); err != nil || !strings.Contains(string(dt), "not the box's") {
		t.Errorf("a file outside, behind a symlink and a bind mount, was touched: %v", err)
	}
}

// BenchmarkSweep is what giving a user back adds to every Close: a pass
// over the host's shared folders (for a uid that owns nothing there, so
// that no box's files are touched).
func BenchmarkSweep(b *testing.B) {
	s := &Sandbox{}
	u := boxUser{name: "bench", uid: 3_900_000_000, subUID: idpool.Span{Start: 3_900_100_000, Size: 65536}}
	for b.Loop() {
		if err := s.removeLeftovers(u); err != nil {
			b.Fatal(err)
		}
	}
}

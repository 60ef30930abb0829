package sandbox

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// owner is the uid that owns path (not following a symlink at its end).
func owner(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// TestNewRefusesASymlinkedBoxFolder: a symlink where a user's box folder
// goes (planted by whoever could write there) makes New refuse, naming
// the path, and the symlink's target keeps its owner: root never chowns
// or creates through it.
func TestNewRefusesASymlinkedBoxFolder(t *testing.T) {
	u, err := user.Lookup(DefaultUser)
	if err != nil {
		t.Fatalf("sandbox user (run hack/install-deps.sh): %v", err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o711)
	os.Chmod(filepath.Dir(dir), 0o711) // the users can pass on the way
	target := t.TempDir()
	// Both where a box folder of the user has gone: by name and by uid.
	for _, n := range []string{u.Username, u.Uid} {
		if err := os.Symlink(target, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = New(Config{Scope: "test", Dir: dir, Pool: 1})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("New with a symlinked box folder = %v; want a refusal naming the path and the symlink", err)
	}
	if got := owner(t, target); got != 0 {
		t.Errorf("the symlink's target is now owned by uid %d; want root's", got)
	}
}

// TestSandboxUserCannotPlantTheCheckoutMount: the sandbox user cannot put
// a symlink where Run binds the checkout (the box folder is root's), and
// Run, finding one there, refuses rather than chown or mount through it.
func TestSandboxUserCannotPlantTheCheckoutMount(t *testing.T) {
	s := newSandbox(t, Limits{})
	b := openBox(t, s)
	uid, gid := b.UID()
	target := t.TempDir()
	ln := exec.Command("ln", "-s", target, filepath.Join(b.dir, "src"))
	ln.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	if out, err := ln.CombinedOutput(); err == nil {
		t.Errorf("the sandbox user made a symlink in its box folder %s: %s", b.dir, out)
	}
	// Had anything planted one (root can), Run refuses it rather than
	// chown or mount through it.
	if err := os.Symlink(target, filepath.Join(b.dir, "src")); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Run(context.Background(), Script{Checkout: checkout(t, "#!/bin/sh\necho ran\n"), Argv: []string{"./test.sh"}}); err == nil {
		t.Errorf("Run with a symlink at its checkout mount point: %+v, no error; want a refusal", res)
	}
	if got := owner(t, target); got != 0 {
		t.Errorf("the planted symlink's target is now owned by uid %d; want root's", got)
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Errorf("the checkout was bound over the planted symlink's target: %v", entries)
	}
}

// TestChownTreeNeverFollowsASwappedEntry: while the checkout is handed to
// the sandbox user, a process of the user (a container that still has the
// checkout bound) swaps an entry for a symlink to something of root's,
// after chownTree has read the entry's folder and before it opens the
// entry: the one moment a walk that followed symlinks would be led out
// of the checkout. The swap is made there by chownTree's own hook, so the
// test does not depend on winning a race. Nothing of root's is chowned.
func TestChownTreeNeverFollowsASwappedEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry func(t *testing.T, path string)       // makes the checkout's entry
		root  func(t *testing.T) (string, []string) // root's target, and what must stay root's
	}{
		{
			name: "folder",
			entry: func(t *testing.T, p string) {
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			root: func(t *testing.T) (string, []string) {
				dir := t.TempDir()
				f := filepath.Join(dir, "f")
				if err := os.WriteFile(f, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return dir, []string{dir, f}
			},
		},
		{
			name: "file",
			entry: func(t *testing.T, p string) {
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			root: func(t *testing.T) (string, []string) {
				f := filepath.Join(t.TempDir(), "shadow")
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return f, []string{f}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			co := t.TempDir()
			d := filepath.Join(co, "d")
			tc.entry(t, d)
			target, roots := tc.root(t)
			swapped := false
			c := treeChown{uid: 4242, gid: 4242, opening: func(p string) {
				if p != d || swapped {
					return
				}
				swapped = true
				if err := os.Rename(d, filepath.Join(t.TempDir(), "moved")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, d); err != nil {
					t.Fatal(err)
				}
			}}
			if err := c.run(co); err != nil {
				t.Errorf("chownTree with %s swapped for a symlink: %v; want the symlink chowned as such", d, err)
			}
			if !swapped {
				t.Fatalf("chownTree never came to open %s; the swap was not made", d)
			}
			for _, p := range roots {
				if got := owner(t, p); got != 0 {
					t.Errorf("%s (root's, reached through the swapped symlink) is now owned by uid %d", p, got)
				}
			}
			if got := owner(t, d); got != 4242 {
				t.Errorf("the symlink that replaced %s is owned by uid %d; want 4242 (the checkout's entries are the user's)", d, got)
			}
		})
	}
}

// TestChownTreeLeavesAHardLinkedFileAlone: a hard link in the checkout to
// a file of root's outside it (a box container can make one where
// fs.protected_hardlinks is off; root makes it here, which that setting
// never stops) does not hand that file to the sandbox user; the
// checkout's own files are handed over.
func TestChownTreeLeavesAHardLinkedFileAlone(t *testing.T) {
	co := t.TempDir()
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte("root:x:::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(co, "own"), nil, 0o644)
	os.Mkdir(filepath.Join(co, "d"), 0o755)
	if err := os.Link(outside, filepath.Join(co, "d", "x")); err != nil {
		t.Fatal(err)
	}
	if err := chownTree(co, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if got := owner(t, outside); got != 0 {
		t.Errorf("the file outside the checkout, hard-linked into it, is now owned by uid %d; want root's", got)
	}
	for _, p := range []string{co, filepath.Join(co, "d"), filepath.Join(co, "own")} {
		if got := owner(t, p); got != 4242 {
			t.Errorf("%s is owned by uid %d; want 4242", p, got)
		}
	}
}

// TestChownTreeBounds: a checkout's folders nested deeper than
// maxChownDepth are refused with the reason (one descriptor stays open per
// level), and a folder of more entries than one read batch is chowned
// whole.
func TestChownTreeBounds(t *testing.T) {
	co := t.TempDir()
	wide := filepath.Join(co, "wide")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 2500 {
		if err := os.WriteFile(filepath.Join(wide, strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chownTree(co, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"0", "1023", "1024", "2499"} {
		if got := owner(t, filepath.Join(wide, name)); got != 4242 {
			t.Errorf("wide/%s is owned by uid %d; want 4242", name, got)
		}
	}

	deep := co
	for range maxChownDepth + 2 {
		deep = filepath.Join(deep, "d")
		if err := os.Mkdir(deep, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err := chownTree(co, 4242, 4242)
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("chownTree of folders %d deep: %v; want a refusal saying they are nested too deep", maxChownDepth+2, err)
	}
}

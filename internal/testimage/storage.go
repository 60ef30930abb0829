package testimage

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Storage returns a container storage of the test's own (buildah's and
// podman's --root and --runroot), so that what its builds pull and make
// (bases from its registry, the layer cache, the working containers of a
// failed build) never reaches the machine's shared storage. When the test
// ends everything in it is removed, then the folders.
func Storage(t testing.TB) (root, runRoot string) {
	t.Helper()
	Require(t)
	root = filepath.Join(t.TempDir(), "root")
	// podman refuses a run root of more than 50 characters, which a
	// test's TempDir often is.
	runRoot, err := os.MkdirTemp("", "cccp-rr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		EmptyStorage(t, root, runRoot)
		if err := os.RemoveAll(runRoot); err != nil {
			t.Errorf("remove the test storage's run root: %v", err)
		}
	})
	return root, runRoot
}

// EmptyStorage removes every container and image of the storage at root
// and unmounts what is still mounted beneath it, so its folders can go.
func EmptyStorage(t testing.TB, root, runRoot string) {
	t.Helper()
	if _, err := os.Stat(root); err != nil {
		return // never used
	}
	g := []string{"--root", root, "--runroot", runRoot}
	if out, err := exec.Command("buildah", append(g, "rm", "--all")...).CombinedOutput(); err != nil {
		t.Errorf("empty test storage: buildah rm --all: %v: %s", err, out)
	}
	if out, err := exec.Command("buildah", append(g, "rmi", "--all", "--force")...).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "no images") {
		t.Errorf("empty test storage: buildah rmi --all: %v: %s", err, out)
	}
	for _, m := range mountsUnder(root) {
		if out, err := exec.Command("umount", m).CombinedOutput(); err != nil {
			t.Errorf("empty test storage: umount %s: %v: %s", m, err, out)
		}
	}
}

// mountsUnder lists the mount points at or beneath dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append([]string{fields[4]}, out...)
		}
	}
	return out
}

// BusyboxIn copies the busybox base (Busybox) into the storage at root
// under the same name, for tests that build FROM it in a storage of
// their own, and returns its name.
func BusyboxIn(t testing.TB, root, runRoot string) string {
	t.Helper()
	Busybox(t)
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("podman", "save", "--format", "oci-archive", "-o", archive, Ref).CombinedOutput(); err != nil {
		t.Fatalf("podman save %s: %v: %s", Ref, err, out)
	}
	g := []string{"--root", root, "--runroot", runRoot}
	id, err := exec.Command("buildah", append(g, "pull", "-q", "oci-archive:"+archive)...).Output()
	if err != nil {
		t.Fatalf("copy %s into the test storage: %v", Ref, err)
	}
	if out, err := exec.Command("buildah", append(g, "tag", strings.TrimSpace(string(id)), Ref)...).CombinedOutput(); err != nil {
		t.Fatalf("tag %s in the test storage: %v: %s", Ref, err, out)
	}
	return Ref
}

package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestCleanupOfACgroupWithoutAFolderRemovesNothingElse: a box cgroup left
// without a box folder (a crash between the two) is removed by Cleanup,
// and nothing outside the box folders is: not what anyone may have put
// in /tmp under a name a box folder-less clean-up once used.
func TestCleanupOfACgroupWithoutAFolderRemovesNothingElse(t *testing.T) {
	s, err := New(Config{Scope: "sbxcl"}) // a scope of its own: Cleanup ends every box of its scope
	if err != nil {
		t.Fatalf("sandbox (run hack/install-deps.sh as root): %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "sbxcl-" + hex.EncodeToString(b)
	var groups []string
	for _, c := range s.cgroups {
		p := filepath.Join(s.cfg.CgroupRoot, c, "cccp-sandbox", name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		groups = append(groups, p)
	}
	planted := filepath.Join(os.TempDir(), "cccp-sandbox-none", name)
	if err := os.MkdirAll(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Dir(planted)) // if empty
	defer os.RemoveAll(planted)
	marker := filepath.Join(planted, "keep")
	os.WriteFile(marker, []byte("not cccp's\n"), 0o644)
	if err := s.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("Cleanup removed %s, which is no box folder: %v", marker, err)
	}
	for _, p := range groups {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left after Cleanup: %v", p, err)
		}
	}
}

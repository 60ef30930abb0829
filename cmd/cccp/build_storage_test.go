package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildStorage: builds get a storage of cccp's own in DATA unless the
// operator names another or the machine's ("shared"); its run root is
// outside DATA (it must not outlive a reboot) and differs per storage.
func TestBuildStorage(t *testing.T) {
	data := t.TempDir()
	for _, tt := range []struct {
		name, flag, root string
	}{
		{"default", "", filepath.Join(data, "build-storage")},
		{"named", "/srv/cccp-builds", "/srv/cccp-builds"},
		{"shared", "shared", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, runRoot, err := buildStorage(&envFlags{data: data, buildStorage: tt.flag})
			if err != nil {
				t.Fatal(err)
			}
			if root != tt.root {
				t.Errorf("root %q, want %q", root, tt.root)
			}
			if root == "" {
				if runRoot != "" {
					t.Errorf("run root %q for the machine's storage", runRoot)
				}
				return
			}
			if strings.HasPrefix(runRoot, data) || !filepath.IsAbs(runRoot) {
				t.Errorf("run root %q: want an absolute path outside DATA", runRoot)
			}
			if os.Geteuid() == 0 && !strings.HasPrefix(runRoot, "/run/cccp/") {
				t.Errorf("run root %q of a root cccp: want it under /run/cccp", runRoot)
			}
		})
	}
	_, a, _ := buildStorage(&envFlags{data: data})
	_, b, _ := buildStorage(&envFlags{data: t.TempDir()})
	if a == b {
		t.Errorf("two storages share the run root %s", a)
	}
}

// TestBuildStorageRefusesTheMachines: cccp prunes its build storage as its
// own, so it must not be the one the operator's podman uses.
func TestBuildStorageRefusesTheMachines(t *testing.T) {
	for _, dir := range []string{"/var/lib/containers/storage", "/var/lib/containers/storage/"} {
		if _, _, err := buildStorage(&envFlags{data: t.TempDir(), buildStorage: dir}); err == nil || !strings.Contains(err.Error(), "machine's container storage") {
			t.Errorf("--build-storage %s: err %v, want it refused", dir, err)
		}
	}
}

// TestBuildStorageConfig: cccp serve takes the storage from
// pipeline.build.storage.
func TestBuildStorageConfig(t *testing.T) {
	c, err := loadServeConfig(writeConfig(t, "index:\n  path: /x\npipeline:\n  build:\n    storage: /srv/builds\n"), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Pipeline.Build.Storage != "/srv/builds" {
		t.Errorf("pipeline.build.storage = %q", c.Pipeline.Build.Storage)
	}
}

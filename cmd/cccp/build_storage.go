package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/retention"
)

// sharedBuildStorage is the --build-storage value that builds in the
// machine's own container storage (buildah's default), which cccp then
// never prunes.
const sharedBuildStorage = "shared"

// buildStorage is the container storage of cccp's builds: --build-storage,
// by default DATA/build-storage. A storage of cccp's own is what lets
// cccp remove what its builds pulled and cached (retention's
// build_cache_unused_for, and the working containers of killed builds at
// start) without touching what the operator's podman keeps in the
// machine's storage, and keeps another user's rmi from racing cccp's
// builds (containers/buildah#5674). One DATA is one cccp (its database is
// locked), so nothing else builds in it.
//
// Its run root (locks, mount counts: state that must not outlive a
// reboot) is on /run (root) or $XDG_RUNTIME_DIR, named after the storage.
// Empty root: the machine's storage.
func buildStorage(f *envFlags) (root, runRoot string, err error) {
	switch f.buildStorage {
	case sharedBuildStorage:
		return "", "", nil
	case "":
		root = filepath.Join(f.data, "build-storage")
	default:
		root = f.buildStorage
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", "", fmt.Errorf("--build-storage: %w", err)
	}
	for _, shared := range machineStorages() {
		if sameFolder(root, shared) {
			return "", "", fmt.Errorf("--build-storage %s is the machine's container storage, which cccp prunes as its own: "+
				"name a folder of cccp's own, or %q to build there unpruned", root, sharedBuildStorage)
		}
	}
	sum := sha256.Sum256([]byte(root))
	name := "build-storage-" + hex.EncodeToString(sum[:6])
	switch {
	case os.Geteuid() == 0:
		runRoot = filepath.Join("/run", "cccp", name)
	case os.Getenv("XDG_RUNTIME_DIR") != "":
		runRoot = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "cccp", name)
	default:
		runRoot = filepath.Join(os.TempDir(), fmt.Sprintf("cccp-%d", os.Geteuid()), name)
	}
	return root, runRoot, nil
}

// newBuilder is buildah over the builds' storage.
func newBuilder(f *envFlags, b *buildah.Builder) (*buildah.Builder, error) {
	root, runRoot, err := buildStorage(f)
	if err != nil {
		return nil, err
	}
	b.Root, b.RunRoot = root, runRoot
	return b, nil
}

// cliBuildCache is the builds' own storage for `cccp retention` (cccp
// serve stopped, so no build is under way): the local backend over it,
// nil when builds use the machine's storage or the storage was never made.
func cliBuildCache(f *envFlags, log *slog.Logger) (*local.Backend, error) {
	b, err := newBuilder(f, &buildah.Builder{Logger: log})
	if err != nil || b.Root == "" {
		return nil, err
	}
	if _, err := os.Stat(b.Root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return local.New(local.Config{Dir: filepath.Join(f.data, "work", "local"), Buildah: b, Podman: &podman.Runner{Logger: log}, Logger: log})
}

// buildCacheOf is b as retention's BuildCache, nil for none (never an
// interface holding a nil *local.Backend).
func buildCacheOf(b *local.Backend) retention.BuildCache {
	if b == nil {
		return nil
	}
	return b
}

// buildCacheMetrics are what the pruning of the builds' own storage
// removed (none when builds use the machine's storage).
func buildCacheMetrics(env *pipelineEnv) []func(io.Writer) error {
	if env.buildCache == nil {
		return nil
	}
	return []func(io.Writer) error{env.backend.WriteBuildCacheMetrics}
}

// sameFolder tells whether a and b name one folder, through symlinks
// (a folder not there yet is compared by its name).
func sameFolder(a, b string) bool {
	if a == b {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// machineStorages are the default container storages of root and of
// cccp's user, which others use too.
func machineStorages() []string {
	out := []string{"/var/lib/containers/storage"}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		out = append(out, filepath.Join(d, "containers", "storage"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, ".local", "share", "containers", "storage"))
	}
	return out
}

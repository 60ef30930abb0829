package buildah

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// IDMap puts a build's RUN steps in a user namespace: uid and gid 0 to
// Size-1 in the build container are host uids UID.. and gids GID.., so
// root in a RUN step is an unprivileged nobody on the host. Files keep
// their container ids in the image's layers.
//
// Ids at or above Size do not exist in the namespace: a RUN step sees a
// base image's file owned by uid 70000 as owned by nobody (65534), the
// base layer keeps it as 70000 (seen with buildah 1.28.2), and a RUN step
// cannot chown to such an id. 65,536 ids (internal/idpool.RangeSize)
// cover common distribution images, as for rootless podman.
type IDMap struct {
	UID, GID, Size uint32
}

func (m *IDMap) args() []string {
	return []string{
		"--userns-uid-map", fmt.Sprintf("0:%d:%d", m.UID, m.Size),
		"--userns-gid-map", fmt.Sprintf("0:%d:%d", m.GID, m.Size),
	}
}

// disableIDMapEnv is containers/storage's switch (from 1.45) that turns off
// idmapped lower layers for overlay; see noIDMappedLowers.
const disableIDMapEnv = "_CONTAINERS_OVERLAY_DISABLE_IDMAP=yes"

// noIDMappedLowers makes the storage give a mapped build a chowned copy of
// its base image's layers instead of idmapped mounts of them.
//
// Why: with idmapped lower layers (containers/storage 1.44, buildah 1.28.2
// on a 6.x kernel, as root), what a RUN step writes lands in the upper
// layer with host ids, and the commit does not map them back: `RUN touch
// /x` in a build mapped to 200000 gave a layer entry x owned by
// 200000/200000 instead of 0/0. With the chowned copy the commit maps them
// back (x owned by 0/0); the copy costs one unpacked copy of the base per
// range it is built in, kept with the base image (BENCHMARKS.md).
//
// containers/storage 1.44 has no switch for it but its feature cache in
// the run root, <runroot>/overlay/idmapped-lower-dir-{true,false}, which it
// consults before probing the kernel; this writes "false" there. It holds
// for every user of that storage (mapped podman containers of root's
// storage are then copied too) and until the run root is emptied (a
// reboot): it is written again before every mapped build. Newer
// containers/storage reads disableIDMapEnv, which bud sets as well.
func (b *Builder) noIDMappedLowers(ctx context.Context) error {
	runRoot, err := b.runRoot(ctx)
	if err != nil {
		return err
	}
	dir := filepath.Join(runRoot, "overlay")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storage feature cache: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "idmapped-lower-dir-false"), nil, 0o644); err != nil {
		return fmt.Errorf("storage feature cache: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, "idmapped-lower-dir-true")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage feature cache: %w", err)
	}
	return nil
}

// runRoot is the storage's run root: Builder.RunRoot, or what buildah
// reports (storage.conf's, /run/containers/storage by default), asked
// once: it does not change while cccp runs.
func (b *Builder) runRoot(ctx context.Context) (string, error) {
	if b.RunRoot != "" {
		return b.RunRoot, nil
	}
	b.runRootMu.Lock()
	defer b.runRootMu.Unlock()
	if b.runRootIs != "" {
		return b.runRootIs, nil
	}
	args := append(b.globalArgs(), "info", "--format", "{{.store.RunRoot}}")
	out, err := exec.CommandContext(ctx, b.binary(), args...).Output()
	if err != nil {
		return "", fmt.Errorf("buildah info: %w", err)
	}
	p := strings.TrimSpace(string(out))
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("buildah info: run root %q is not an absolute path", p)
	}
	b.runRootIs = p
	return p, nil
}

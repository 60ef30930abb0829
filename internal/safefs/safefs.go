// Package safefs reads files that a repository controls without letting
// the repository choose which file: a path is opened only beneath a root
// (the checkout), every symlink on the way resolved inside that root, only
// as a regular file, and only up to a size cap.
//
// On Linux 5.6 and later the kernel does the confinement (openat2 with
// RESOLVE_BENEATH and RESOLVE_NO_MAGICLINKS), so a symlink swapped in
// while the path is walked cannot lead out. Elsewhere the path is resolved
// with filepath.EvalSymlinks and checked, then opened with O_NOFOLLOW.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrEscapes is a path that leads out of its root.
var ErrEscapes = errors.New("leads outside the repository")

// ErrNotRegular is a path that is not a regular file (a device, a FIFO, a
// folder).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is a file bigger than the cap.
var ErrTooLarge = errors.New("file too large")

// Open opens rel beneath root for reading, as a regular file. rel may be
// absolute only when it names a path inside root.
func Open(root, rel string) (*os.File, error) {
	rel, err := relative(root, rel)
	if err != nil {
		return nil, err
	}
	f, err := openBeneath(root, rel)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", rel, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", rel, ErrNotRegular, st.Mode().Type())
	}
	return f, nil
}

// ReadFile reads rel beneath root (see Open), refusing a file of more than
// max bytes with ErrTooLarge. It never holds more than max+1 bytes.
func ReadFile(root, rel string, max int64) ([]byte, error) {
	f, err := Open(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", rel, ErrTooLarge, max)
	}
	return data, nil
}

// Resolve returns the real path of rel beneath root with every symlink
// resolved, and ErrEscapes when it is outside root. The path must exist.
// Use it for folders handed to other tools (a build context): they follow
// symlinks themselves, so the answer holds as long as nothing but cccp
// writes to the tree.
func Resolve(root, rel string) (string, error) {
	rel, err := relative(root, rel)
	if err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", root, err)
	}
	p, err := filepath.EvalSymlinks(filepath.Join(realRoot, rel))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", rel, err)
	}
	if !within(realRoot, p) {
		return "", fmt.Errorf("%s: %w", rel, ErrEscapes)
	}
	return p, nil
}

// relative turns rel into a root-relative path; an absolute rel must lie
// inside root.
func relative(root, rel string) (string, error) {
	if rel == "" {
		return ".", nil
	}
	if filepath.IsAbs(rel) {
		r, err := filepath.Rel(filepath.Clean(root), filepath.Clean(rel))
		if err != nil || r == ".." || strings.HasPrefix(r, "../") {
			return "", fmt.Errorf("%s: %w", rel, ErrEscapes)
		}
		return r, nil
	}
	return filepath.Clean(rel), nil
}

func within(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, "../") && !filepath.IsAbs(r)
}

func openBeneath(root, rel string) (*os.File, error) {
	dir, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer dir.Close()
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK, // a FIFO must not block the open
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
	case errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("%s: %w", rel, ErrEscapes)
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		// No openat2 (old kernel, or a seccomp filter that forbids it).
	default:
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	p, err := Resolve(root, rel)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, err)
	}
	return f, nil
}

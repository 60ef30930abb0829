package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultDir holds the boxes when Config.Dir is empty: a folder of root's,
// outside every sandbox user's home. With a folder per uid and a box's
// name, a box's runroot stays within podman's 50 characters.
const DefaultDir = "/var/lib/cccp-boxes"

// Box folders are made and chowned, and checkouts bound into them, by
// cccp as root. Every folder on the way to where that happens is root's
// and writable by root alone: a folder a sandbox user owns (its home)
// could have an entry replaced by a symlink between a check and a use,
// and root would then chown or mount through it (chown /etc to the
// user). Only the leaves (a box's home, storage, runroot, xdg, tmp) are
// the user's.

// Folders of root's that a sandbox user must pass (Dir, a user's folder,
// a box's folder) are 0711, set explicitly: Mkdir's mode is cut by the
// umask, and the shipped systemd unit's UMask=0027 would leave them 0710,
// which no sandbox user can pass. Files of root's that a user must read
// (the podman shim, registries.conf) get their modes the same way.

// boxRoot makes dir (0711) if it is missing and returns it with symlinks
// resolved, after checking that only root can change it or any folder
// above it (a world-writable folder with the sticky bit, such as /tmp,
// is allowed above it: no one else can rename or remove root's entries
// there), and that the sandbox users can pass each of them (others may
// execute). dir itself and the folders boxRoot made are given that bit
// when they lack it; a folder above dir that lacks it is an error.
func boxRoot(dir string) (string, error) {
	made, err := mkdirAll(dir)
	if err != nil {
		return "", fmt.Errorf("box folder: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("box folder: %w", err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return "", fmt.Errorf("box folder: %w", err)
	}
	ours := map[string]bool{real: true}
	for _, p := range made {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			ours[r] = true
		}
	}
	var repair []string
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", fmt.Errorf("box folder: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		sticky := fi.Mode()&fs.ModeSticky != 0 && p != real
		switch {
		case !fi.IsDir():
			return "", fmt.Errorf("box folder %s: %s is not a folder", dir, p)
		case st.Uid != 0:
			return "", fmt.Errorf("box folder %s: %s is owned by uid %d, not root: whoever owns it could redirect what cccp does as root there", dir, p, st.Uid)
		case fi.Mode().Perm()&0o022 != 0 && !sticky:
			return "", fmt.Errorf("box folder %s: %s is writable by group or others (%v): only root may change it", dir, p, fi.Mode().Perm())
		case fi.Mode().Perm()&0o001 == 0 && !ours[p]:
			return "", fmt.Errorf("box folder %s: %s does not let the sandbox users through (%v): give others execute (chmod o+x)", dir, p, fi.Mode().Perm())
		case fi.Mode().Perm()&0o001 == 0:
			repair = append(repair, p)
		}
		if p == "/" {
			break
		}
	}
	// Only now, with every folder on the way root's alone, is a path
	// safe to change modes through.
	for _, p := range repair {
		if err := passable(p); err != nil {
			return "", fmt.Errorf("box folder %s: %w", dir, err)
		}
	}
	return real, nil
}

// mkdirAll is os.MkdirAll(dir, 0o711) that returns the folders it made,
// each set to 0711 whatever the umask.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	return missing, nil
}

// passable gives others execute on the folder p (of root's, in folders
// only root can change), so that the sandbox users can pass it.
func passable(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", p)
	}
	if err := os.Chmod(p, fi.Mode().Perm()|0o001|fi.Mode()&(fs.ModeSticky|fs.ModeSetgid|fs.ModeSetuid)); err != nil {
		return fmt.Errorf("let the sandbox users through %s: %w", p, err)
	}
	return nil
}

// userDir makes (0711, root's) or checks the folder of a user's boxes in
// root: never a symlink, a folder of root's that only root can write and
// the users can pass.
func userDir(root string, uid uint32) (string, error) {
	p := filepath.Join(root, strconv.FormatUint(uint64(uid), 10))
	if err := mkdirRoot(p); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("box folder: %w", err)
	}
	return p, checkRootDir(p)
}

// mkdirRoot makes the folder p of root's, 0711 whatever the umask (in a
// folder only root can change).
func mkdirRoot(p string) error {
	if err := os.Mkdir(p, 0o711); err != nil {
		return err
	}
	return os.Chmod(p, 0o711)
}

// checkRootDir checks that p itself (not what it may point to) is a
// folder of root's that only root can write, and lets others through it
// (repaired: it is root's, in a folder of root's).
func checkRootDir(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("box folder: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("box folder %s is a symlink; refusing to use it (remove it)", p)
	case !fi.IsDir():
		return fmt.Errorf("box folder %s is not a folder (%v); refusing to use it (remove it)", p, fi.Mode().Type())
	case st.Uid != 0:
		return fmt.Errorf("box folder %s is owned by uid %d, not root; refusing to use it (remove it)", p, st.Uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("box folder %s is writable by group or others (%v); refusing to use it", p, fi.Mode().Perm())
	case fi.Mode().Perm()&0o001 == 0:
		if err := passable(p); err != nil {
			return fmt.Errorf("box folder: %w", err)
		}
	}
	return nil
}

// mkdirFor makes the folder p, which must not exist yet (its parent is
// root's), and hands it to uid:gid without following a symlink.
func mkdirFor(p string, uid, gid uint32) error {
	if err := os.Mkdir(p, 0o700); err != nil {
		return err
	}
	return os.Lchown(p, int(uid), int(gid))
}

// chownTree hands a checkout to the sandbox user, so its scripts can
// write there. A checkout a box already had is the user's to change while
// this runs (a container of the box can still have it bound), so no path
// below root is ever resolved: each folder is opened from its parent's
// descriptor without following a symlink, and each entry chowned by its
// name in that folder, never through a symlink.
func chownTree(root string, uid, gid int) error {
	return treeChown{uid: uid, gid: gid}.run(root)
}

// treeChown is one chownTree.
type treeChown struct {
	uid, gid int
	// opening, when set, is called with each entry's path after its
	// folder was read and before the entry is opened: the moment a user's
	// swap of the entry for a symlink would lead a walk that follows
	// symlinks out of the tree. Tests swap entries there.
	opening func(path string)
}

func (c treeChown) run(root string) error {
	fd, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	return c.dir(fd, root, 0)
}

// maxChownDepth bounds the folders chownTree goes down (one descriptor is
// open per level): a checkout is the repository's, and a box's script may
// have nested folders without end.
const maxChownDepth = 256

// dir chowns the open folder fd (named path in errors), depth levels
// below the root, and what is in it, and closes fd. Entries are read a
// batch at a time, so a folder of millions costs a batch.
func (c treeChown) dir(fd int, path string, depth int) error {
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if depth > maxChownDepth {
		return fmt.Errorf("%s: folders nested more than %d deep", path, maxChownDepth)
	}
	if err := syscall.Fchown(fd, c.uid, c.gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	for {
		entries, err := f.ReadDir(1024)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := c.entries(fd, path, entries, depth); err != nil {
			return err
		}
	}
}

// entries chowns entries of the open folder fd, named below path.
func (c treeChown) entries(fd int, path string, entries []os.DirEntry, depth int) error {
	for _, e := range entries {
		name := filepath.Join(path, e.Name())
		if c.opening != nil {
			c.opening(name)
		}
		if e.IsDir() {
			sub, err := syscall.Openat(fd, e.Name(), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
			if err == nil {
				if err := c.dir(sub, name, depth+1); err != nil {
					return err
				}
				continue
			}
			if !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("open %s: %w", name, err)
			}
			// Replaced by a symlink or a file meanwhile: chowned as such.
		}
		if err := chownEntry(fd, e.Name(), c.uid, c.gid); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	return nil
}

// chownEntry chowns the entry name (not a folder) of the open folder fd,
// never through a symlink, and only when that entry is its sole link: a
// hard link the user made to a file outside the tree (/etc/shadow, with
// fs.protected_hardlinks off) is left as it is, as is the file. An
// entry gone meanwhile is no error.
func chownEntry(fd int, name string, uid, gid int) error {
	f, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(f)
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR || st.Nlink != 1 || (int(st.Uid) == uid && int(st.Gid) == gid) {
		return nil
	}
	return unix.Fchownat(f, "", uid, gid, unix.AT_EMPTY_PATH)
}

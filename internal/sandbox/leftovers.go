package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// A box's own files live in its folder, and a script's /tmp and HOME are
// tmpfs of bubblewrap's, all gone with the box. But what a box's user
// runs outside bubblewrap (its podman service, conmon, a container the
// script starts with a host folder bound in: rootless root is the user
// on the host) can write wherever the user may: the host's /tmp, /var/tmp,
// /dev/shm, /dev/mqueue and the user's home. Files left there would be
// read by the next box that gets the same user: the next repository. So
// when a box is closed (and at Cleanup, for every user no box holds),
// everything the user or one of its subordinate uids owns in those places
// is removed, and, inside a folder there that others may write (such as
// /tmp/.X11-unix), what it owns in that folder.

// sharedDirs are the host's folders every user may write in.
var sharedDirs = []string{"/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"}

// maxRemoveDepth is how many folders deep removal goes holding a
// descriptor per level; a folder deeper is moved up (renamed into the
// top folder being removed) and removed from there, so that a tree a box
// nested without end is removed all the same.
const maxRemoveDepth = 64

// removeOwned removes from the folder dir every entry owned by a uid that
// owned reports true for, with everything in it, and looks for such
// entries in the folders in dir that others may write (not owned: they
// are another's). No symlink is followed, and no other mount is entered:
// one mounted on a folder to remove (a FUSE mount the user made) is
// detached first. A dir that does not exist is no error.
func removeOwned(dir string, owned func(uid uint32) bool) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return removeOwnedAt(fd, dir, owned, 0)
}

func removeOwnedAt(fd int, dir string, owned func(uid uint32) bool, depth int) error {
	names, err := readNames(fd, dir, -1)
	if err != nil {
		return err
	}
	mnt, err := mountID(fd, "")
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	var errs []error
	for _, name := range names {
		var st unix.Statx_t
		err := unix.Statx(fd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE|unix.STATX_UID|unix.STATX_MODE|unix.STATX_MNT_ID, &st)
		path := filepath.Join(dir, name)
		switch {
		case errors.Is(err, unix.ENOENT):
			continue
		case errors.Is(err, unix.ENOTCONN):
			// A FUSE mount whose server died (the user's, killed with
			// its box): it holds nothing any more. Left as it is.
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		case owned(st.Uid):
			if err := removeAt(fd, name, path, -1, 0); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&0o002 != 0 && st.Mnt_id == mnt && depth < maxRemoveDepth {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // replaced meanwhile: by root, or a user no box holds
			}
			if m, err := mountID(sub, ""); err == nil && m == mnt {
				if err := removeOwnedAt(sub, path, owned, depth+1); err != nil {
					errs = append(errs, err)
				}
			}
			unix.Close(sub)
		}
	}
	return errors.Join(errs...)
}

// removeAt removes the entry name of the open folder fd (named path in
// errors) and everything in it, depth levels below the top entry being
// removed; top is that entry's descriptor (-1 when name is the top).
func removeAt(fd int, name, path string, top, depth int) error {
	parent, err := mountID(fd, "")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for range 8 { // mounts can be stacked
		var st unix.Statx_t
		err := unix.Statx(fd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_TYPE|unix.STATX_MNT_ID, &st)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := unix.Unlinkat(fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("remove %s: %w", path, err)
			}
			return nil
		}
		if err == nil && st.Mnt_id == parent {
			break
		}
		// Something is mounted on it (or a dead FUSE mount hides it):
		// detach it, without following a symlink at name.
		if err := unix.Unmount(filepath.Join("/proc/self/fd", strconv.Itoa(fd), name), unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			return fmt.Errorf("remove %s: detach what is mounted on it: %w", path, err)
		}
	}
	sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP):
		// Replaced by a file or a symlink meanwhile: removed as such.
		if err := unix.Unlinkat(fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if m, err := mountID(sub, ""); err != nil || m != parent {
		unix.Close(sub)
		return fmt.Errorf("remove %s: another file system is mounted on it", path)
	}
	if top >= 0 && depth >= maxRemoveDepth {
		unix.Close(sub)
		b := make([]byte, 8)
		rand.Read(b)
		if err := unix.Renameat(fd, name, top, ".cccp-deep-"+hex.EncodeToString(b)); err != nil {
			return fmt.Errorf("remove %s: move it up: %w", path, err)
		}
		return nil // removed with top's entries
	}
	if top < 0 {
		top = sub
	}
	err = emptyDir(sub, path, top, depth)
	unix.Close(sub)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(fd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// emptyDir removes everything in the open folder fd, named path, until
// it is empty (folders moved up into it, when it is top, included).
func emptyDir(fd int, path string, top, depth int) error {
	for {
		names, err := readNames(fd, path, 4096)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		for _, n := range names {
			if err := removeAt(fd, n, filepath.Join(path, n), top, depth+1); err != nil {
				return err
			}
		}
	}
}

// readNames reads up to max (-1: all) entry names of the open folder fd
// from its start, "." and ".." left out.
func readNames(fd int, path string, max int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	buf := make([]byte, 32<<10)
	var names []string
	for max < 0 || len(names) < max {
		n, err := unix.ReadDirent(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	return names, nil
}

// mountID is the id of the mount the entry name of fd ("": fd itself) is on.
func mountID(fd int, name string) (uint64, error) {
	var st unix.Statx_t
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_DONT_SYNC
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	if err := unix.Statx(fd, name, flags, unix.STATX_MNT_ID, &st); err != nil {
		return 0, err
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return uint64(st.Dev_major)<<32 | uint64(st.Dev_minor), nil // before Linux 5.8: the device
	}
	return st.Mnt_id, nil
}

// removeLeftovers removes what u or one of its subordinate uids owns in
// the shared folders and in u's home (nothing of cccp's is there: a box's
// HOME is its own folder; old layouts' box folders, <home>/b and
// <home>/boxes, go with the rest).
func (s *Sandbox) removeLeftovers(u boxUser) error {
	owned := u.owns
	dirs := append(slices.Clone(sharedDirs), u.home)
	var errs []error
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if err := removeOwned(d, owned); err != nil {
			errs = append(errs, fmt.Errorf("remove what %s left in %s: %w", u.name, d, err))
		}
	}
	return errors.Join(errs...)
}

// owns reports whether uid is u's or one of its subordinate uids.
func (u boxUser) owns(uid uint32) bool { return uid == u.uid || u.subUID.Has(uid) }

// outsideSweep fails when removeLeftovers could reach the checkout co,
// which is u's once a box has run in it (and stays so for the stages
// after): when its folder is one others may write (such as /tmp) or one
// of the folders above it is u's.
func (u boxUser) outsideSweep(co string) error {
	abs, err := filepath.Abs(co)
	if err != nil {
		return fmt.Errorf("checkout %s: %w", co, err)
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("checkout %s: %w", co, err)
		}
		switch {
		case u.owns(st.Uid):
			return fmt.Errorf("checkout %s lies in %s, a folder of sandbox user %s: what the user owns there is removed when a box gives the user back; keep checkouts in cccp's data folder", co, p, u.name)
		case p == filepath.Dir(abs) && st.Mode&0o002 != 0:
			return fmt.Errorf("checkout %s lies in %s, a folder anyone may write: what the sandbox user owns there is removed when a box gives the user back; keep checkouts in cccp's data folder", co, p)
		case p == filepath.Dir(abs) && sameFile(&st, u.home):
			return fmt.Errorf("checkout %s lies in %s, the home of sandbox user %s: what the user owns there is removed when a box gives the user back; keep checkouts in cccp's data folder", co, p, u.name)
		}
		if p == "/" {
			return nil
		}
	}
}

// removeStaleBoxes removes every box folder left in u's folder: with u
// held, no box of any cccp is open there, so each is a crashed box's (of
// this Scope or another), whose storage holds a repository's images and
// whose folders the next box of u could read by name. A checkout still
// bound into one is detached, never gone through.
func (s *Sandbox) removeStaleBoxes(u boxUser) error {
	fd, err := unix.Open(u.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", u.dir, err)
	}
	defer unix.Close(fd)
	names, err := readNames(fd, u.dir, -1)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		s.cfg.Logger.Warn("sandbox: removing a box folder a crashed cccp left", "user", u.name, "box", n)
		if err := removeAt(fd, n, filepath.Join(u.dir, n), -1, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sameFile reports whether path is the file st describes.
func sameFile(st *unix.Stat_t, path string) bool {
	var o unix.Stat_t
	return path != "" && unix.Stat(path, &o) == nil && o.Dev == st.Dev && o.Ino == st.Ino
}

package sandbox

import (
	"errors"
	"fmt"

	"github.com/cccp-project/cccp/internal/idpool"
)

// subIDs reads u's subordinate uids and gids and checks that no user,
// group or process of the machine has an id in them: New kills every
// process running as one before it hands u out, and rootless podman runs
// u's containers as them.
func subIDs(files idpool.IDFiles, u *boxUser) error {
	f := files
	if f.SubUID == "" {
		f.SubUID = "/etc/subuid"
	}
	if f.SubGID == "" {
		f.SubGID = "/etc/subgid"
	}
	span := func(file string) (idpool.Span, error) {
		start, count, err := idpool.SubIDs(file, u.name)
		if err != nil {
			return idpool.Span{}, fmt.Errorf("%w (rootless podman needs them)", err)
		}
		return idpool.Span{Start: uint32(start), Size: uint32(count)}, nil
	}
	var err error
	if u.subUID, err = span(f.SubUID); err != nil {
		return err
	}
	if u.subGID, err = span(f.SubGID); err != nil {
		return err
	}
	return idpool.CheckUnowned(f, u.name, u.subUID, u.subGID)
}

// disjoint fails when two users' subordinate ranges overlap: their boxes'
// containers would share host ids.
func disjoint(files idpool.IDFiles, users []boxUser) error {
	var errs []error
	for i, a := range users {
		for _, b := range users[i+1:] {
			if overlap(a.subUID, b.subUID) {
				errs = append(errs, fmt.Errorf("%s: the subordinate uids of sandbox users %q (%s) and %q (%s) overlap: their boxes' containers would share host ids",
					or(files.SubUID, "/etc/subuid"), a.name, a.subUID, b.name, b.subUID))
			}
			if overlap(a.subGID, b.subGID) {
				errs = append(errs, fmt.Errorf("%s: the subordinate gids of sandbox users %q (%s) and %q (%s) overlap: their boxes' containers would share host ids",
					or(files.SubGID, "/etc/subgid"), a.name, a.subGID, b.name, b.subGID))
			}
		}
	}
	return errors.Join(errs...)
}

func overlap(a, b idpool.Span) bool {
	return uint64(a.Start) <= b.Last() && uint64(b.Start) <= a.Last()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

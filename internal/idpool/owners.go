package idpool

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// IDFiles are the files that say which ids are whose; an empty field
// names the machine's own.
type IDFiles struct {
	// SubUID and SubGID hold the subordinate ids; default /etc/subuid,
	// /etc/subgid.
	SubUID, SubGID string
	// Passwd and Group hold the users and groups; default /etc/passwd,
	// /etc/group.
	Passwd, Group string
}

func (f IDFiles) withDefaults() IDFiles {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&f.SubUID, "/etc/subuid")
	def(&f.SubGID, "/etc/subgid")
	def(&f.Passwd, "/etc/passwd")
	def(&f.Group, "/etc/group")
	return f
}

// CheckUnowned fails, naming the file, the range and whose id lies in
// it, when one of uids (owner's subordinate uids, from files.SubUID) or
// gids (from files.SubGID) is someone else's: the uid or primary gid of
// a user in files.Passwd, the gid of a group in files.Group, or an id a
// process runs as in cccp's own user namespace. No container runs
// there (rootless podman and builds run theirs in user namespaces of
// their own), so a process there that runs as such an id belongs to a
// real user or service. cccp kills every process running as an id of a
// range before handing the range out, and runs repository code as its
// ids: an id that is another's would get that one's processes killed
// and its files written by repository code. Such a range is refused, not
// trimmed: the subordinate id files are wrong, and podman and newuidmap
// read the same files. Users known only to NSS (LDAP) are not seen.
func CheckUnowned(files IDFiles, owner string, uids, gids Span) error {
	files = files.withDefaults()
	fix := fmt.Sprintf("cccp kills every process running as an id of the range and runs repository code as its ids: give %q a range no user, group or process has an id in (hack/install-deps.sh puts it above every range already handed out)", owner)
	bad := func(file string, sp Span, what string) error {
		return fmt.Errorf("%s: range %s of %q holds %s; %s", file, sp, owner, what, fix)
	}
	if err := eachEntry(files.Passwd, func(line int, f []string) error {
		if len(f) < 4 {
			return nil
		}
		if n, err := strconv.ParseUint(f[2], 10, 32); err == nil && uids.has(n) {
			return bad(files.SubUID, uids, fmt.Sprintf("uid %d of user %q (%s:%d)", n, f[0], files.Passwd, line))
		}
		if n, err := strconv.ParseUint(f[3], 10, 32); err == nil && gids.has(n) {
			return bad(files.SubGID, gids, fmt.Sprintf("gid %d of user %q (%s:%d)", n, f[0], files.Passwd, line))
		}
		return nil
	}); err != nil {
		return err
	}
	if err := eachEntry(files.Group, func(line int, f []string) error {
		if len(f) < 3 {
			return nil
		}
		if n, err := strconv.ParseUint(f[2], 10, 32); err == nil && gids.has(n) {
			return bad(files.SubGID, gids, fmt.Sprintf("gid %d of group %q (%s:%d)", n, f[0], files.Group, line))
		}
		return nil
	}); err != nil {
		return err
	}
	if p, ok := hostProcIn(IDs{UIDs: []Span{uids}, GIDs: []Span{gids}}); ok {
		file, sp := files.SubUID, uids
		if !procHas(p.uid, uids) {
			file, sp = files.SubGID, gids
		}
		return bad(file, sp, fmt.Sprintf("an id of process %d (%s, uids %s, gids %s), which runs outside any container", p.pid, p.comm, p.uid, p.gid))
	}
	return nil
}

func procHas(list string, sp Span) bool {
	for _, s := range strings.Split(list, ",") {
		if n, err := strconv.ParseUint(s, 10, 32); err == nil && sp.has(n) {
			return true
		}
	}
	return false
}

// eachEntry calls f with the colon-separated fields of each line of a
// passwd or group file, and its line number.
func eachEntry(file string, f func(line int, fields []string) error) error {
	fh, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("check subordinate ids against the machine's users: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if err := f(line, strings.Split(t, ":")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// hostProcIn finds a process of cccp's own user namespace that runs as
// one of ids.
func hostProcIn(ids IDs) (proc, bool) {
	own, err := os.Readlink(filepath.Join(procRoot, "self", "ns", "user"))
	if err != nil {
		return proc{}, false
	}
	for _, p := range inRange(ids) {
		ns, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(p.pid), "ns", "user"))
		if err == nil && ns == own {
			return p, true
		}
	}
	return proc{}, false
}

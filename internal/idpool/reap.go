package idpool

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A range's ids can outlive the build that held them: a RUN step's
// container that a cancelled (SIGKILLed) buildah or a crashed cccp left
// running still runs as host ids of the range. Handing the range to the
// next build would let that process signal, trace and write the files of
// the next build's steps. So a range is cleared of every process running
// as one of its uids or gids before it is handed out and when it is
// given back; a range that cannot be cleared is held back (see
// Ranges.held).

// procRoot is where the processes are listed.
const procRoot = "/proc"

// inRange lists the processes whose real, effective, saved or
// file-system uid is in [uid, uid+size), or gid in [gid, gid+size).
// A zombie is left out (it runs nothing and goes with its parent's
// wait) unless it is a thread-group leader whose other threads still
// run: the leader's status is the group's, and SIGKILL to it kills them.
func inRange(uid, gid, size uint32) []proc {
	entries, _ := os.ReadDir(procRoot)
	var procs []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := procInRange(filepath.Join(procRoot, e.Name(), "status"), uid, gid, size); ok {
			p.pid = pid
			procs = append(procs, p)
		}
	}
	return procs
}

// proc is a process found running as an id of a range.
type proc struct {
	pid  int
	uid  string // its real, effective, saved and file-system uids
	comm string
}

func procInRange(status string, uid, gid, size uint32) (proc, bool) {
	f, err := os.Open(status)
	if err != nil {
		return proc{}, false // gone
	}
	defer f.Close()
	within := func(ids string, start uint32) bool {
		for _, s := range strings.Fields(ids) {
			n, err := strconv.ParseUint(s, 10, 32)
			if err == nil && uint32(n) >= start && uint64(n) < uint64(start)+uint64(size) {
				return true
			}
		}
		return false
	}
	var p proc
	hit, zombie, threads := false, false, 1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "Name":
			p.comm = strings.TrimSpace(v)
		case "State":
			zombie = strings.HasPrefix(strings.TrimSpace(v), "Z")
		case "Threads":
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				threads = n
			}
		case "Uid":
			p.uid = strings.Join(strings.Fields(v), ",")
			hit = hit || within(v, uid)
		case "Gid":
			hit = hit || within(v, gid)
		}
	}
	if zombie && threads <= 1 {
		return proc{}, false
	}
	return p, hit
}

// clearRange kills (SIGKILL) every process running as an id of the range,
// logging each, and waits, up to wait, until none is left; it reports the
// ones left.
func clearRange(log *slog.Logger, uid, gid, size uint32, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	killed := map[int]bool{}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		procs := inRange(uid, gid, size)
		if len(procs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pids := make([]int, len(procs))
			for i, p := range procs {
				pids[i] = p.pid
			}
			slices.Sort(pids)
			return fmt.Errorf("ids %d-%d (uids) %d-%d (gids): processes %v still run as them after SIGKILL",
				uid, uint64(uid)+uint64(size)-1, gid, uint64(gid)+uint64(size)-1, pids)
		}
		for _, p := range procs {
			if !killed[p.pid] {
				killed[p.pid] = true
				log.Warn("idpool: killing a process left running as an id of a range", "pid", p.pid, "uid", p.uid, "comm", p.comm,
					"range_uid", uid, "range_gid", gid)
			}
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(delay)
	}
}

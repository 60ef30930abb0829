package idpool

import (
	"bufio"
	"fmt"
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

// inRange lists the processes (zombies left out: they run nothing and go
// with their parent's wait) whose real, effective, saved or file-system
// uid is in [uid, uid+size), or gid in [gid, gid+size).
func inRange(uid, gid, size uint32) []int {
	entries, _ := os.ReadDir(procRoot)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if procInRange(filepath.Join(procRoot, e.Name(), "status"), uid, gid, size) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procInRange(status string, uid, gid, size uint32) bool {
	f, err := os.Open(status)
	if err != nil {
		return false // gone
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
	hit := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "State":
			if strings.HasPrefix(strings.TrimSpace(v), "Z") {
				return false
			}
		case "Uid":
			hit = hit || within(v, uid)
		case "Gid":
			hit = hit || within(v, gid)
		}
	}
	return hit
}

// clearRange kills (SIGKILL) every process running as an id of the range
// and waits, up to wait, until none is left; it reports the ones left.
func clearRange(uid, gid, size uint32, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		pids := inRange(uid, gid, size)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			slices.Sort(pids)
			return fmt.Errorf("ids %d-%d (uids) %d-%d (gids): processes %v still run as them after SIGKILL",
				uid, uint64(uid)+uint64(size)-1, gid, uint64(gid)+uint64(size)-1, pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(delay)
	}
}

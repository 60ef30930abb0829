package idpool

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A member's ids can outlive the holder that ran as them: a RUN step's
// container that a cancelled (SIGKILLed) buildah or a crashed cccp left
// running still runs as host ids of its range, a box's podman service or
// container as its sandbox user's. Handing the member to the next holder
// would let that process signal, trace and write the files of the next
// holder's processes. So a member is cleared of every process running as
// one of its uids or gids before it is handed out and when it is given
// back; a member that cannot be cleared is held back (see Cleared.held).
//
// A process is killed through a pidfd, and only after its ids are read
// again while the pidfd pins it: a process that took the pid of one
// reaped since /proc was listed is never signalled.

// procRoot is where the processes are listed.
const procRoot = "/proc"

// Span is a block of ids: Size ids from Start.
type Span struct{ Start, Size uint32 }

func (s Span) has(id uint64) bool {
	return id >= uint64(s.Start) && id < uint64(s.Start)+uint64(s.Size)
}

// Has reports whether id is in the span.
func (s Span) Has(id uint32) bool { return s.has(uint64(id)) }

// Last is the span's last id.
func (s Span) Last() uint64 { return uint64(s.Start) + uint64(s.Size) - 1 }

func (s Span) String() string {
	if s.Size == 1 {
		return strconv.FormatUint(uint64(s.Start), 10)
	}
	return fmt.Sprintf("%d-%d", s.Start, s.Last())
}

// IDs are the host uids and gids a member of a pool runs as.
type IDs struct{ UIDs, GIDs []Span }

func (ids IDs) String() string {
	str := func(spans []Span) string {
		s := make([]string, len(spans))
		for i, sp := range spans {
			s[i] = sp.String()
		}
		return strings.Join(s, ",")
	}
	return "uids " + str(ids.UIDs) + " gids " + str(ids.GIDs)
}

// inRange lists the processes whose real, effective, saved or
// file-system uid is one of ids' uids, or gid one of its gids.
// A zombie is left out (it runs nothing and goes with its parent's
// wait) unless it is a thread-group leader whose other threads still
// run: the leader's status is the group's, and SIGKILL to it kills them.
func inRange(ids IDs) []proc {
	entries, _ := os.ReadDir(procRoot)
	var procs []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := procInRange(filepath.Join(procRoot, e.Name(), "status"), ids); ok {
			p.pid = pid
			procs = append(procs, p)
		}
	}
	return procs
}

// proc is a process found running as one of the ids.
type proc struct {
	pid  int
	uid  string // its real, effective, saved and file-system uids
	gid  string // and gids
	comm string
}

func procInRange(status string, ids IDs) (proc, bool) {
	f, err := os.Open(status)
	if err != nil {
		return proc{}, false // gone
	}
	defer f.Close()
	within := func(v string, spans []Span) bool {
		for _, s := range strings.Fields(v) {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				continue
			}
			for _, sp := range spans {
				if sp.has(n) {
					return true
				}
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
			hit = hit || within(v, ids.UIDs)
		case "Gid":
			p.gid = strings.Join(strings.Fields(v), ",")
			hit = hit || within(v, ids.GIDs)
		}
	}
	if zombie && threads <= 1 {
		return proc{}, false
	}
	return p, hit
}

// clearIDs kills (SIGKILL) every process running as one of ids, logging
// each, and waits, up to wait, until none is left; it reports the ones
// left.
func clearIDs(log *slog.Logger, ids IDs, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	killed := map[int]bool{}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		procs := inRange(ids)
		if len(procs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			pids := make([]int, len(procs))
			for i, p := range procs {
				pids[i] = p.pid
			}
			slices.Sort(pids)
			return fmt.Errorf("%s: processes %v still run as them after SIGKILL", ids, pids)
		}
		for _, p := range procs {
			if !killed[p.pid] {
				killed[p.pid] = true
				log.Warn("idpool: killing a process left running as an id of a pool member", "pid", p.pid, "uid", p.uid, "gid", p.gid,
					"comm", p.comm, "ids", ids.String())
			}
			killIfInRange(p.pid, ids)
		}
		time.Sleep(delay)
	}
}

// killIfInRange sends SIGKILL to the process pid if it runs as one of
// ids when signalled. The pid was listed a moment ago: the process may
// have been reaped since and its pid taken by another. So the process
// is pinned by a pidfd first, its ids are read again from its /proc
// entry, and the signal goes through the pidfd: if the entry read was
// another's (the pinned one ended before it was read), the pinned one
// is gone and the signal reaches no one. It reports whether a signal
// was sent.
func killIfInRange(pid int, ids IDs) (bool, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if _, ok := procInRange(filepath.Join(procRoot, strconv.Itoa(pid), "status"), ids); !ok {
		return false, nil
	}
	err = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kill %d: %w", pid, err)
	}
	return true, nil
}

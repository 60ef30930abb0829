package idpool

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testproc"
)

// TestKillSparesAProcessThatTookAReapedPid: a process of a range, listed
// and then reaped before the kill, whose pid an unrelated process (root's)
// took meanwhile: the kill must not reach the newcomer.
func TestKillSparesAProcessThatTookAReapedPid(t *testing.T) {
	const base = 3_700_000_000
	ids := IDs{UIDs: []Span{{base, RangeSize}}, GIDs: []Span{{base, RangeSize}}}
	old, done := startAs(t, base+3, base+3)
	pid := old.Process.Pid
	if got := inRange(ids); len(got) != 1 || got[0].pid != pid {
		t.Fatalf("listed %+v; want the range's process %d", got, pid)
	}
	old.Process.Kill()
	<-done // reaped: its pid is free
	testproc.StartWithPid(t, pid)
	sent, err := killIfInRange(pid, ids)
	if err != nil {
		t.Fatal(err)
	}
	if sent {
		t.Errorf("a signal went to pid %d, now a process of root's", pid)
	}
	// A SIGKILL takes effect at once, but not synchronously: give it
	// time to turn the newcomer (not waited for) into a zombie.
	time.Sleep(100 * time.Millisecond)
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("the newcomer %d is gone: %v", pid, err)
	}
	if _, rest, _ := strings.Cut(string(st), ") "); strings.HasPrefix(rest, "Z") {
		t.Errorf("the newcomer %d, root's, was killed", pid)
	}
}

package idpool

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
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
	startWithPid(t, pid)
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

// startWithPid starts a sleep as root with the given pid, which must be
// free: the kernel hands out the pid after ns_last_pid, so it is set just
// before the start, again until no other fork on the machine came first.
func startWithPid(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	for range 200 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("set the next pid (this test runs as root): %v", err)
		}
		cmd := exec.Command("sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Fatalf("could not start a process with pid %d in 200 tries", pid)
	return nil
}

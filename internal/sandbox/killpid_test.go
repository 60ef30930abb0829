package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testproc"
)

// TestKillSparesAProcessThatTookAMembersPid: a process of a box's cgroup,
// listed and then reaped before the kill, whose pid a process outside the
// box (root's) took meanwhile: the kill must not reach the newcomer.
func TestKillSparesAProcessThatTookAMembersPid(t *testing.T) {
	s := newSandbox(t, Limits{})
	name := randName("test-")
	groups := map[string]string{}
	for _, c := range s.cgroups {
		p := filepath.Join(s.cfg.CgroupRoot, c, "cccp-sandbox", name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
		groups[c] = p
	}
	member := exec.Command("sleep", "1000")
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	pid := member.Process.Pid
	for c, p := range groups {
		if err := writeFile(p, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			member.Process.Kill()
			member.Wait()
			t.Fatalf("enter cgroup %s: %v", c, err)
		}
	}
	if got := procs(groups); len(got) != 1 || got[0] != pid {
		t.Fatalf("members %v; want %d", got, pid)
	}
	member.Process.Kill()
	member.Wait() // reaped: its pid is free
	testproc.StartWithPid(t, pid)
	killMembers(groups, []int{pid})
	// A SIGKILL takes effect at once, but not synchronously: give it
	// time to turn the newcomer (not waited for) into a zombie.
	time.Sleep(100 * time.Millisecond)
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("the newcomer %d is gone: %v", pid, err)
	}
	if _, rest, _ := strings.Cut(string(st), ") "); strings.HasPrefix(rest, "Z") {
		t.Errorf("the newcomer %d, root's and outside the box, was killed", pid)
	}
}

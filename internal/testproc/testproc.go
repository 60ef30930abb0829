// Package testproc starts processes for tests of cccp's process handling.
package testproc

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// StartWithPid starts a `sleep` as root with the given pid, which must be
// free: the kernel hands out the pid after ns_last_pid, so it is set just
// before the start, again until no other fork on the machine came first.
// The process is killed when the test ends.
func StartWithPid(t testing.TB, pid int) *exec.Cmd {
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

package idpool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestRangeOfARealUserIsRefused: subordinate ids that hold an id of a
// user or group of the machine, or of a process outside any container,
// are refused when the ranges are set up, with an error that names the
// file, the range and whose id it is; ids a container runs as (a process
// in a user namespace of its own, as a build's leftover RUN step) are not
// someone else's.
func TestRangeOfARealUserIsRefused(t *testing.T) {
	const base = 3_800_000_000
	for _, tt := range []struct {
		name          string
		passwd, group string
		// run starts a process as an id of the range: "host" in cccp's
		// own user namespace, "container" in one of its own.
		run  string
		want []string // in the error; none: accepted
	}{
		{name: "clear", passwd: "root:x:0:0::/root:/bin/sh\n", group: "root:x:0:\n"},
		{name: "uid of a user", passwd: "root:x:0:0::/root:/bin/sh\nalice:x:3800000100:100::/home/alice:/bin/sh\n", group: "root:x:0:\n",
			want: []string{"subuid: range 3800000000-3800131071 of \"builder\"", "uid 3800000100 of user \"alice\"", "passwd:2"}},
		{name: "primary gid of a user", passwd: "bob:x:1000:3800000005::/home/bob:/bin/sh\n", group: "root:x:0:\n",
			want: []string{"subgid: range 3800000000-3800131071", "gid 3800000005 of user \"bob\""}},
		{name: "gid of a group", passwd: "root:x:0:0::/root:/bin/sh\n", group: "root:x:0:\n\n# staff\nstaff:x:3800131071:bob\n",
			want: []string{"subgid: range", "gid 3800131071 of group \"staff\"", "group:4"}},
		{name: "process outside any container", passwd: "root:x:0:0::/root:/bin/sh\n", group: "root:x:0:\n", run: "host",
			want: []string{"subuid: range 3800000000-3800131071", "an id of process", "(sleep, uids 3800000042,"}},
		{name: "process of a container", passwd: "root:x:0:0::/root:/bin/sh\n", group: "root:x:0:\n", run: "container"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			line := fmt.Sprintf("builder:%d:%d\n", base, 2*RangeSize)
			files := map[string]string{"subuid": line, "subgid": line, "passwd": tt.passwd, "group": tt.group}
			for f, s := range files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var pid int
			switch tt.run {
			case "host":
				cmd, _ := startAs(t, base+42, 65534)
				pid = cmd.Process.Pid
			case "container":
				startInUserns(t, base+42)
			}
			_, err := NewRanges(RangesConfig{User: "builder", SubUID: filepath.Join(dir, "subuid"), SubGID: filepath.Join(dir, "subgid"),
				Passwd: filepath.Join(dir, "passwd"), Group: filepath.Join(dir, "group"), Dir: filepath.Join(dir, "locks")})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("NewRanges: %v; want the range accepted", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewRanges accepted a range that holds another's id")
			}
			want := tt.want
			if pid != 0 {
				want = append(want, "process "+strconv.Itoa(pid)+" ")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// startInUserns starts a sleep in a user namespace of its own whose root
// is the host's uid and gid id, as a build's RUN step runs.
func startInUserns(t *testing.T, id uint32) {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		Credential:  &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}, // root of the namespace: the host's id
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(id), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(id), Size: 1}},
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil || !strings.Contains(string(st), strconv.FormatUint(uint64(id), 10)) {
		t.Fatalf("the process in its own user namespace does not run as host id %d: %v\n%s", id, err, st)
	}
}

package idpool

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testdata/zombie-leader.status is /proc/<pid>/status of a real process
// recorded on this project's Debian 12 machine (kernel 6.18): python3 whose main
// thread ended with the exit syscall (not exit_group) while two threads
// it started still slept, so the leader shows State: Z and Threads: 3.
// Its Uid and Gid lines were changed to 3900000007, an id of the test's
// range; nothing else was.

// TestZombieLeaderWithLiveThreadsIsInRange: a thread-group leader that is
// a zombie while its other threads run is a live process of the range
// (killed by SIGKILL to it); a zombie with no thread left is not.
func TestZombieLeaderWithLiveThreadsIsInRange(t *testing.T) {
	rec, err := os.ReadFile("testdata/zombie-leader.status")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		state   string // replaces the State line's value, "" keeps it
		threads string // replaces the Threads line's value, "" keeps it
		want    bool
	}{
		{"zombie leader, 3 threads (recorded)", "", "", true},
		{"zombie, its last thread", "", "1", false},
		{"sleeping", "S (sleeping)", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			for _, l := range strings.Split(string(rec), "\n") {
				switch {
				case tt.state != "" && strings.HasPrefix(l, "State:"):
					l = "State:\t" + tt.state
				case tt.threads != "" && strings.HasPrefix(l, "Threads:"):
					l = "Threads:\t" + tt.threads
				}
				lines = append(lines, l)
			}
			p := filepath.Join(t.TempDir(), "status")
			os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
			got, in := procInRange(p, IDs{UIDs: []Span{{3_900_000_000, RangeSize}}, GIDs: []Span{{3_900_000_000, RangeSize}}})
			if in != tt.want {
				t.Errorf("in range = %v; want %v", in, tt.want)
			}
			if in && got.comm != "python3" {
				t.Errorf("comm = %q; want python3", got.comm)
			}
		})
	}
}

// TestEveryKillIsLogged: clearing a range logs each process it kills,
// with its pid, uids and command.
func TestEveryKillIsLogged(t *testing.T) {
	dir := t.TempDir()
	line := "reap-test:3900000000:65536\n"
	for _, f := range []string{"subuid", "subgid"} {
		os.WriteFile(filepath.Join(dir, f), []byte(line), 0o644)
	}
	var buf bytes.Buffer
	r, err := NewRanges(RangesConfig{User: "reap-test", SubUID: filepath.Join(dir, "subuid"), SubGID: filepath.Join(dir, "subgid"),
		Dir: filepath.Join(dir, "locks"), Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cmd, done := startAs(t, 3_900_000_000+9, 3_900_000_000+9)
	g, err := r.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if !ended(done) {
		t.Fatal("the range's process still runs")
	}
	for _, want := range []string{"pid=" + strconv.Itoa(cmd.Process.Pid), "comm=sleep", "uid=3900000009,3900000009,3900000009,3900000009"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

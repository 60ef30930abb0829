package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/idpool"
)

// TestNewRefusesSubordinateIDsThatAreAnothers: New refuses a sandbox
// user whose subordinate ids hold a user's id (the pool kills every
// process running as them before it hands the user out), or that another
// user of the pool shares, and says which file, range and user.
func TestNewRefusesSubordinateIDsThatAreAnothers(t *testing.T) {
	s := newSandbox(t, Limits{}) // the machine's users and their ranges
	if len(s.users) < 2 {
		t.Fatalf("sandbox pool has %d users, want at least 2 (hack/install-deps.sh creates 4)", len(s.users))
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	lines := func(f func(u boxUser) idpool.Span) string {
		var b strings.Builder
		for _, u := range s.users {
			sp := f(u)
			b.WriteString(u.name + ":" + itoa(int(sp.Start)) + ":" + itoa(int(sp.Size)) + "\n")
		}
		return b.String()
	}
	subuid := lines(func(u boxUser) idpool.Span { return u.subUID })
	subgid := lines(func(u boxUser) idpool.Span { return u.subGID })
	first, second := s.users[0], s.users[1]
	for _, tt := range []struct {
		name                   string
		subuid, subgid, passwd string
		want                   []string
	}{
		{name: "the machine's", subuid: subuid, subgid: subgid, passwd: string(passwd)},
		{name: "a user's uid in the range", subuid: subuid, subgid: subgid,
			passwd: string(passwd) + "alice:x:" + itoa(int(first.subUID.Start)+500) + ":100::/home/alice:/bin/sh\n",
			want:   []string{"subuid: range " + first.subUID.String() + " of \"" + first.name + "\"", "of user \"alice\""}},
		{name: "two users share ids", passwd: string(passwd), subgid: subgid,
			subuid: strings.Replace(subuid, second.name+":"+itoa(int(second.subUID.Start)), second.name+":"+itoa(int(first.subUID.Start)+1), 1),
			want:   []string{"subordinate uids of sandbox users \"" + first.name + "\"", "\"" + second.name + "\"", "overlap"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := idpool.IDFiles{SubUID: filepath.Join(dir, "subuid"), SubGID: filepath.Join(dir, "subgid"), Passwd: filepath.Join(dir, "passwd")}
			os.WriteFile(files.SubUID, []byte(tt.subuid), 0o644)
			os.WriteFile(files.SubGID, []byte(tt.subgid), 0o644)
			os.WriteFile(files.Passwd, []byte(tt.passwd), 0o644)
			_, err := New(Config{Scope: "test", IDFiles: files})
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted subordinate ids that are another's")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

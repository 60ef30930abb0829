package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/testgit"
)

// TestRetentionCommandPrunesMirrors: `cccp retention` removes a git
// mirror unused for longer than retention.mirrors_unused_for and lists it
// in its report.
func TestRetentionCommandPrunesMirrors(t *testing.T) {
	testgit.Require(t)
	data := t.TempDir()
	repo := testgit.Repo(t, "main", map[string]string{"Dockerfile": "FROM scratch\n"})
	url := "file://" + repo
	longAgo := time.Now().Add(-11 * 24 * time.Hour)
	m := &gitsrc.Mirror{Dir: filepath.Join(data, "mirrors"), Now: func() time.Time { return longAgo }}
	if _, err := m.ObjectIDs(t.Context(), url, testgit.Run(t, repo, "rev-parse", "HEAD"), ""); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, "index:\n  path: "+t.TempDir()+"\nregistry:\n  address: 127.0.0.1:0\n"+
		"retention:\n  keep_last: 5\n  mirrors_unused_for: 240h\n")
	for _, dry := range []bool{true, false} {
		cmd := newRetentionCommand()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		args := []string{"--config", config, "--data", data}
		if dry {
			args = append(args, "--dry-run")
		}
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatalf("cccp retention %v: %v\n%s", args, err, errOut.String())
		}
		var res struct{ Mirrors []string }
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("report %q: %v", out.String(), err)
		}
		if len(res.Mirrors) != 1 || !strings.HasPrefix(res.Mirrors[0], url+" (") {
			t.Errorf("cccp retention %v reports mirrors %q, want the one of %s", args, res.Mirrors, url)
		}
		left, _ := filepath.Glob(filepath.Join(data, "mirrors", "*.git"))
		if want := 0; dry {
			if len(left) != 1 {
				t.Errorf("dry run left %q, want the mirror untouched", left)
			}
		} else if len(left) != want {
			t.Errorf("mirrors left %q, want none", left)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "mirrors")); err != nil {
		t.Errorf("mirrors folder: %v", err)
	}
}

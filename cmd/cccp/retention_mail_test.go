package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
)

// TestRetentionCommandPrunesGivenUpMail: `cccp retention` prunes the mail
// given up for good by the configured policy, and says how much it pruned
// (or, with --dry-run, would prune) of runs, tags and mails.
func TestRetentionCommandPrunesGivenUpMail(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	db, err := store.Open(filepath.Join(data, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mails []store.Mail
	for i := range 4 {
		mails = append(mails, store.Mail{To: []string{"team@app.example"}, Subject: fmt.Sprint("mail ", i+1)})
	}
	if err := db.QueueMail(ctx, mails, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} { // 4 waits
		if err := db.FailMail(ctx, id, "550 no such user"); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	config := filepath.Join(t.TempDir(), "config.yaml")
	// No runs: the external registry is never asked.
	yaml := "registry:\n  external: 127.0.0.1:1\nretention:\n  keep_last: 1\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := newRetentionCommand()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(append([]string{"--config", config, "--data", data}, args...))
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatalf("cccp retention %v: %v\n%s", args, err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	tests := []struct {
		name      string
		args      []string
		wantMails []string
		wantLine  string
	}{
		{"dry run", []string{"--dry-run"}, []string{"1", "2"}, "cccp: would prune 0 runs, 0 run tags, 2 given-up mails"},
		{"prune", nil, []string{"1", "2"}, "cccp: pruned 0 runs, 0 run tags, 2 given-up mails"},
		{"again", nil, nil, "cccp: pruned 0 runs, 0 run tags, 0 given-up mails"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr := run(tt.args...)
			var res struct{ Mails []string }
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("%v\n%s", err, stdout)
			}
			if !slices.Equal(res.Mails, tt.wantMails) {
				t.Errorf("Mails = %v, want %v", res.Mails, tt.wantMails)
			}
			if !strings.Contains(stderr, tt.wantLine) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantLine)
			}
		})
	}
	db, err = store.Open(filepath.Join(data, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	left, err := db.Mails(ctx, "", 0)
	if err != nil || len(left) != 2 || left[0].ID != "4" || left[1].ID != "3" {
		t.Errorf("outbox after retention: %+v, %v; want the waiting mail 4 and the newest given-up 3", left, err)
	}
}

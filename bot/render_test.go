package bot

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/commands"
	"github.com/cccp-project/cccp/bot/forgetest"
	"github.com/cccp-project/cccp/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenRuns are a passed and a failed run of one pull request's head,
// with fixed times, the failure explained by a check and by log lines.
func goldenRuns() []*store.Run {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	passed := &store.Run{ID: "41", Project: "hello/cli:latest", Kind: "pr", State: store.Passed, Started: t0, Finished: t0.Add(95 * time.Second),
		Stages: []store.Stage{
			{Name: "build", State: store.Passed, Started: t0, Finished: t0.Add(60 * time.Second)},
			{Name: "test", State: store.Passed, Started: t0.Add(60 * time.Second), Finished: t0.Add(95 * time.Second)},
		}}
	failed := &store.Run{ID: "42", Project: "hello/web:latest", Kind: "pr", State: store.Failed, Started: t0, Finished: t0.Add(80 * time.Second),
		Stages: []store.Stage{
			{Name: "build", State: store.Passed, Started: t0, Finished: t0.Add(50 * time.Second)},
			{Name: "test", State: store.Failed, Started: t0.Add(50 * time.Second), Finished: t0.Add(80 * time.Second),
				Reason: "ChecksFailed", Error: "failed: user-script", Checks: []store.Check{
					{Name: "smoke", State: store.Passed},
					{Name: "user-script", State: store.Failed, Explain: []string{"test.sh: expected 200, got 500"}},
				}},
		}}
	for _, r := range []*store.Run{passed, failed} {
		r.Cause = store.Cause{Kind: "pull_request", Forge: "github", Repo: "Codertocat/Hello-World", PR: 1, Commit: sha1}
		r.Commit = sha1
	}
	return []*store.Run{passed, failed}
}

// TestRenderGolden pins what the bot writes on a forge: the pull-request
// comment, a run's status, the waiting status and an index pull request's
// check. Regenerate with go test ./bot -run TestRenderGolden -update and
// review the diff.
func TestRenderGolden(t *testing.T) {
	log := []string{
		"2026-01-01T10:01:10.000000001Z STEP 3/4: RUN make",
		"2026-01-01T10:01:11.000000001Z main.c:12: error: 'x' undeclared",
		"2026-01-01T10:01:12.000000001Z cccp: stage test ended",
	}
	tb := newTestBot(t, func(c *Config) {
		c.LogTail = func(_, _ string, n int) ([]string, error) { return log[max(0, len(log)-n):], nil }
	})
	runs := goldenRuns()
	rec := &prRecord{Forge: "github", Repo: "Codertocat/Hello-World", Number: 1, HeadSHA: sha1, Runs: []string{"41", "42"}, Author: "writer"}
	waiting := &prRecord{Forge: "github", Repo: "Codertocat/Hello-World", Number: 2, HeadSHA: sha2, Author: "outsider",
		Waiting: true, WaitingFor: []string{"hello/cli:latest", "hello/web:latest"}}
	index := &prRecord{Forge: "github", Repo: "org/index", Number: 3, HeadSHA: sha3, Index: true, Author: "newcomer",
		Lint: &indexResult{Entries: []entryLint{{Key: "new/app:latest"}, {Key: "bad/a`pp:latest", Findings: []string{"index.d/bad.yaml:4: git-url: no userinfo allowed"}}}}}
	draft := &prRecord{Forge: "github", Repo: "Codertocat/Hello-World", Number: 4, HeadSHA: sha2, Author: "writer", Draft: true}
	indexBroken := &prRecord{Forge: "github", Repo: "org/index", Number: 5, HeadSHA: sha3, Index: true,
		Lint: &indexResult{Error: "clone: exit status 128 | fatal: `x`"}}
	indexCycle := &prRecord{Forge: "github", Repo: "org/index", Number: 6, HeadSHA: sha3, Index: true,
		Lint: &indexResult{StructErr: true, Structure: []string{"index.d/a.yaml:3: cycle: a/app:latest -> b/app:latest -> a/app:latest"},
			Removed: []string{"old/app:latest", "gone/app:v1"},
			Entries: []entryLint{{Key: "a/app:latest", Failed: true, Findings: []string{"index.d/a.yaml:3: depends-on: cycle"}}}}}
	indexRuns := []*store.Run{{ID: "43", Project: "new/app:latest", Kind: "trial", State: store.Passed, Stages: runs[0].Stages,
		Started: runs[0].Started, Finished: runs[0].Finished}}
	statusJSON := func(v any) []byte {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	dir := filepath.Join("testdata", "render")
	tests := []struct {
		name string
		got  []byte
	}{
		{"comment.md", []byte(tb.renderComment(rec, runs, 65535))},
		{"comment-small-limit.md", []byte(tb.renderComment(rec, runs, 700))},
		{"status-failed.json", statusJSON(tb.runStatus(runs[1], 65535))},
		{"status-passed.json", statusJSON(tb.runStatus(runs[0], 65535))},
		{"comment-waiting.md", []byte(tb.renderComment(waiting, nil, 65535))},
		{"waiting-summary.md", []byte(tb.waitingSummary(waiting))},
		{"refusal.md", []byte(tb.tmpl.Render("refusal", map[string]any{"Who": "outsider", "Command": commands.Command("ok-to-test")}))},
		{"comment-index.md", []byte(tb.renderComment(index, indexRuns, 65535))},
		{"status-index.json", statusJSON(tb.indexStatus(index, indexRuns))},
		{"comment-draft.md", []byte(tb.renderComment(draft, nil, 65535))},
		{"comment-index-broken.md", []byte(tb.renderComment(indexBroken, nil, 65535))},
		{"status-index-broken.json", statusJSON(tb.indexStatus(indexBroken, nil))},
		{"comment-index-cycle.md", []byte(tb.renderComment(indexCycle, nil, 65535))},
		{"status-index-cycle.json", statusJSON(tb.indexStatus(indexCycle, nil))},
		{"status-index-waiting.json", statusJSON(tb.indexStatus(&prRecord{Forge: "github", Repo: "org/index", Number: 7,
			HeadSHA: sha3, Index: true, Waiting: true, Author: "newcomer"}, nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forgetest.Golden(t, filepath.Join(dir, tt.name+".golden"), tt.got, *update)
		})
	}
}

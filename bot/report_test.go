package bot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"

	"github.com/cccp-project/cccp/bot/report/reporttest"
)

const secret = "hunter2-token"

// failingLog is what the failed test stage printed: runlog timestamps,
// colours, a secret and multi-byte text.
func failingLog(n int) func(runID, stage string, lines int) ([]string, error) {
	return func(runID, stage string, lines int) ([]string, error) {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("2026-01-01T10:01:%02d.123456789Z \x1b[31mstep %d failed: ünïcödé ✓ token=%s\x1b[0m", i%60, i, secret))
		}
		if len(out) > lines {
			out = out[len(out)-lines:]
		}
		return out, nil
	}
}

// prWithRuns opens a pull request by a writer and returns its two runs.
func prWithRuns(t *testing.T, tb *testBot) (web, cli *store.Run) {
	t.Helper()
	tb.forge.writers["writer"] = true
	if err := tb.route(context.Background(), prEvent(t, "p1", "writer", sha1)); err != nil {
		t.Fatal(err)
	}
	for _, r := range tb.runs(t) {
		switch r.Project {
		case "hello/web:latest":
			web = r
		case "hello/cli:latest":
			cli = r
		}
	}
	if web == nil || cli == nil {
		t.Fatalf("runs = %v", tb.pipe.Requests())
	}
	return web, cli
}

func TestReporter(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, func(c *Config) { c.LogTail = failingLog(50) })
	web, cli := prWithRuns(t, tb)
	tb.report(t)
	webKey := "Codertocat/Hello-World " + sha1 + " cccp/hello/web:latest"
	if st := tb.forge.statuses[webKey]; st.State != event.StateQueued {
		t.Errorf("queued status = %+v", st)
	}

	_, err := tb.db.UpdateRun(ctx, web.ID, func(r *store.Run) error {
		r.State, r.Stages[0].State = store.Running, store.Running
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tb.db.Run(ctx, web.ID)
	tb.Observe(r)
	tb.report(t)
	if st := tb.forge.statuses[webKey]; st.State != event.StateRunning || st.Title != "running build" {
		t.Errorf("running status = %q %q", st.State, st.Title)
	}

	tb.pipe.finish(ctx, web.ID, store.Failed)
	tb.pipe.finish(ctx, cli.ID, store.Passed)
	tb.report(t)

	st := tb.forge.statuses[webKey]
	checks := []struct{ name, got, want string }{
		{"conclusion", string(st.State), string(event.StateFailure)},
		{"title", st.Title, "failed at test"},
		{"details", st.DetailsURL, "https://cccp.example/runs/" + web.ID},
		{"cli conclusion", string(tb.forge.statuses["Codertocat/Hello-World "+sha1+" cccp/hello/cli:latest"].State), string(event.StateSuccess)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for _, want := range []string{"| build | ✅ passed | 1m0s |", "| test | ❌ failed | 30s |"} {
		if !strings.Contains(st.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, st.Summary)
		}
	}
	if !strings.Contains(st.Text, "step 49 failed: ünïcödé ✓ token=***") || strings.Contains(st.Text, "step 29 failed:") {
		t.Errorf("status text is not the last 20 lines, masked:\n%s", st.Text)
	}

	comments := 0
	for _, c := range tb.forge.Calls() {
		if strings.HasPrefix(c, "comment ") {
			comments++
			if c != "comment Codertocat/Hello-World#1 "+prMarker {
				t.Errorf("comment call %q does not edit the one PR comment", c)
			}
		}
	}
	if comments < 2 {
		t.Errorf("%d comment upserts, want the comment edited as runs changed", comments)
	}
	body := tb.forge.Comments()["Codertocat/Hello-World#1 "+prMarker]
	for _, want := range []string{
		"| `hello/web:latest` | ❌ failed at test |", "| `hello/cli:latest` | ✅ passed in 1m30s |",
		"step 49 failed: ünïcödé ✓ token=***\n```", "[Full log](https://cccp.example/runs/" + web.ID + ")",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "\x1b") || strings.Contains(body, "2026-01-01T10") {
		t.Errorf("comment keeps ANSI codes or log timestamps:\n%s", body)
	}

	t.Run("the secret is never sent nor stored", func(t *testing.T) {
		for _, b := range tb.forge.bodies {
			if strings.Contains(b, secret) {
				t.Fatalf("a body holds the secret:\n%s", b)
			}
		}
		raw, err := os.ReadFile(tb.path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Error("the store file holds the secret")
		}
	})
	t.Run("unchanged reports are not sent again", func(t *testing.T) {
		before := len(tb.forge.Calls())
		r, _ := tb.db.Run(ctx, web.ID)
		tb.Observe(r)
		tb.report(t)
		if after := tb.forge.Calls(); len(after) != before {
			t.Errorf("calls after re-reporting the same state: %q", after[before:])
		}
	})
}

func TestCommentTruncation(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		lines int
	}{
		{"github limit, short log", 65535, 20},
		{"small limit cuts the log", 1500, 20},
		{"tiny limit drops the log", 400, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			tb := newTestBot(t, func(c *Config) { c.LogTail = failingLog(100); c.LogLines = tt.lines })
			tb.forge.limit = tt.limit
			web, cli := prWithRuns(t, tb)
			tb.pipe.finish(ctx, web.ID, store.Failed)
			tb.pipe.finish(ctx, cli.ID, store.Failed)
			tb.report(t)
			body := tb.forge.Comments()["Codertocat/Hello-World#1 "+prMarker]
			if body == "" {
				t.Fatalf("no comment; calls %q", tb.forge.Calls())
			}
			checkComment(t, body, tt.limit)
			if tt.limit >= 1500 && !strings.Contains(body, "[Full log](https://cccp.example/runs/"+web.ID+")") {
				t.Errorf("comment lacks the full log link:\n%s", body)
			}
			if tt.limit == 1500 && !strings.Contains(body, report.CutNote) {
				t.Errorf("cut log lacks the note:\n%s", body)
			}
		})
	}
}

// checkComment: within the limit, valid UTF-8, marker first, every code
// fence closed.
func checkComment(t *testing.T, body string, limit int) {
	t.Helper()
	if len(body) > limit {
		t.Errorf("comment is %d bytes, over the limit %d", len(body), limit)
	}
	if !utf8.ValidString(body) {
		t.Error("comment is not valid UTF-8")
	}
	if !strings.HasPrefix(body, prMarker) {
		t.Error("comment does not start with the marker")
	}
	if open := reporttest.OpenFence(body); open != "" {
		t.Errorf("code fence %q left open:\n%s", open, body)
	}
}

// TestOutboxRetry: a forge outage delays reports, never drops them, and
// the forge's Retry-After is honoured.
func TestOutboxRetry(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return helloEntries[:1] }
		c.RetryBase = 5 * time.Second
	})
	tb.forge.fail = 2
	if err := tb.route(ctx, ghEvent(t, "push-event-5.json", "p", nil)); err != nil {
		t.Fatal(err)
	}
	tb.rep.flush(ctx)
	due := func(after time.Duration) int {
		rs, err := tb.db.DueReports(ctx, tb.now.Add(after), 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	steps := []struct {
		name       string
		advance    time.Duration
		wantSent   int
		wantWait   time.Duration // the report is due again after this long
		wantStatus bool
	}{
		{"first attempt fails", 0, 0, 5 * time.Second, false},
		{"not due before the backoff", 4 * time.Second, 0, 1 * time.Second, false},
		{"second attempt fails, backoff doubles", time.Second, 0, 10 * time.Second, false},
		{"third attempt goes through", 10 * time.Second, 1, -1, true},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			tb.now = tb.now.Add(s.advance)
			if n := tb.sendDue(ctx); n != s.wantSent {
				t.Errorf("sent %d, want %d", n, s.wantSent)
			}
			if s.wantWait >= 0 {
				if due(s.wantWait-time.Millisecond) != 0 || due(s.wantWait) != 1 {
					t.Errorf("report not due exactly after %s", s.wantWait)
				}
			} else if due(time.Hour) != 0 {
				t.Error("sent report still in the outbox")
			}
			_, ok := tb.forge.statuses["Codertocat/Hello-World 6113728f27ae82c7b1a177c8d03f9e96e0adf246 cccp/hello/web:latest"]
			if ok != s.wantStatus {
				t.Errorf("status at the forge = %v, want %v", ok, s.wantStatus)
			}
		})
	}
	t.Run("retry-after is honoured", func(t *testing.T) {
		tb.forge.fail, tb.forge.failErr = 1, &event.RetryableError{Op: "set status", After: time.Hour, Err: fmt.Errorf("rate limited")}
		run := tb.runs(t)[0]
		tb.pipe.finish(ctx, run.ID, store.Passed)
		tb.rep.flush(ctx)
		tb.sendDue(ctx)
		if due(59*time.Minute) != 0 || due(time.Hour) != 1 {
			t.Error("report not held back for the forge's hour")
		}
		// Another target's report waits for the same forge too.
		other := ghEvent(t, "push-event-5.json", "p2", func(m map[string]any) { m["after"] = sha2 })
		if err := tb.route(ctx, other); err != nil {
			t.Fatal(err)
		}
		tb.rep.flush(ctx)
		calls := len(tb.forge.Calls())
		tb.sendDue(ctx)
		if got := tb.forge.Calls()[calls:]; len(got) != 0 {
			t.Errorf("calls while the forge asked to wait: %q", got)
		}
		tb.now = tb.now.Add(time.Hour)
		if n := tb.sendDue(ctx); n != 2 {
			t.Errorf("sent %d after the wait, want both reports", n)
		}
	})
}

// TestReportsSurviveRestart: a run change observed just before a crash,
// and a report stored but not sent, both reach the forge after a restart.
func TestReportsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/cccp.db"
	db := openDB(t, path)
	tb := newTestBotOn(t, db, path, newFakeForge(), nil)
	web, cli := prWithRuns(t, tb)
	tb.pipe.finish(ctx, web.ID, store.Failed)
	tb.rep.flush(ctx) // web's report is in the outbox, not sent
	tb.pipe.finish(ctx, cli.ID, store.Passed)
	// cli's change was only observed in memory; then the process dies.
	for _, c := range tb.forge.Calls() {
		if strings.HasPrefix(c, "status") || strings.HasPrefix(c, "comment") {
			t.Fatalf("sent before the crash: %q", c)
		}
	}
	db.Close()

	db2 := openDB(t, path)
	defer db2.Close()
	forge := newFakeForge()
	tb2 := newTestBotOn(t, db2, path, forge, func(c *Config) { c.OutboxPoll = 10 * time.Millisecond })
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tb2.Run(runCtx) }()
	want := map[string]event.State{
		"Codertocat/Hello-World " + sha1 + " cccp/hello/web:latest": event.StateFailure,
		"Codertocat/Hello-World " + sha1 + " cccp/hello/cli:latest": event.StateSuccess,
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		forge.mu.Lock()
		got := 0
		for k, st := range want {
			if forge.statuses[k].State == st {
				got++
			}
		}
		forge.mu.Unlock()
		if got == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses after restart: %q", forge.Calls())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

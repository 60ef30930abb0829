package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
)

// prPayload is the pull_request example opened by author at sha, signed,
// with delivery ID id.
func prPayload(t *testing.T, id, author, sha string) (http.Header, []byte) {
	hdr, body := ghPayload(t, "pull_request-opened-1.json", func(m map[string]any) {
		m["number"] = 1.0
		pr := obj(m, "pull_request")
		pr["number"] = 1.0
		obj(pr, "user")["login"] = author
		obj(pr, "head")["sha"] = sha
		obj(m, "sender")["login"] = author
	})
	hdr.Set("X-GitHub-Delivery", id)
	return hdr, body
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runInBackground runs the bot until the test ends.
func runInBackground(t *testing.T, tb *testBot) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-tb.ready
}

// TestRoutingFailureKeepsDelivery: a delivery whose routing fails more
// often than before (the forge's API is down for a while) is not dropped:
// it stays pending with a stored next attempt and is routed once the forge
// answers. Before, it was dropped after 4 attempts (about 31 s), with the
// worker asleep in between; this test then timed out.
func TestRoutingFailureKeepsDelivery(t *testing.T) {
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return helloEntries[:1] }
		c.Now, c.RetryBase, c.RetryMax = time.Now, 20*time.Millisecond, 50*time.Millisecond
	})
	tb.forge.writers["maintainer"] = true
	down := fmt.Errorf("connection refused")
	tb.forge.canWriteErrs = []error{down, down, down, down, down, down}
	runInBackground(t, tb)
	hdr, body := prPayload(t, "pr-1", "maintainer", sha1)
	if code, msg := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusAccepted {
		t.Fatalf("post = %d %s", code, msg)
	}
	waitFor(t, 5*time.Second, "no run for the pull request", func() bool { return len(tb.runs(t)) > 0 })
	waitFor(t, 5*time.Second, "delivery still pending", func() bool { return len(pending(t, tb.db)) == 0 })
	if runs := tb.runs(t); len(runs) != 1 || runs[0].Cause.DeliveryID != "pr-1" {
		t.Errorf("runs = %d, want 1 of pr-1", len(runs))
	}
}

// TestGiveUpAndRedelivery: a permanent error (the forge answered 404)
// gives the delivery up with the reason stored; GitHub's manual
// redelivery, with the same delivery ID, is then accepted and routed, and
// so is a replay. Before, the redelivery was refused as a duplicate.
func TestGiveUpAndRedelivery(t *testing.T) {
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return helloEntries[:1] }
		c.Now = time.Now
	})
	tb.forge.writers["maintainer"] = true
	gone := &event.PermanentError{Op: "github get permission", Status: 404, Err: errors.New("Not Found")}
	tb.forge.canWriteErrs = []error{gone, gone}
	runInBackground(t, tb)
	ctx := context.Background()

	given := func() []string {
		tr, err := tb.db.TroubledDeliveries(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range tr {
			if d.Failed {
				out = append(out, d.ID+": "+d.LastError)
			}
		}
		return out
	}
	hdr, body := prPayload(t, "pr-1", "maintainer", sha1)
	if code, _ := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusAccepted {
		t.Fatalf("first delivery = %d", code)
	}
	waitFor(t, 5*time.Second, "not given up", func() bool { return len(given()) == 1 })
	if g := given()[0]; g != "pr-1: permission of maintainer on Codertocat/Hello-World: github get permission: 404: Not Found" {
		t.Errorf("reason = %q", g)
	}
	if len(tb.runs(t)) != 0 {
		t.Fatal("a run was created")
	}

	t.Run("replay", func(t *testing.T) {
		if err := tb.ReplayDelivery(ctx, "github", "pr-1"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "replay not given up again", func() bool {
			tr, _ := tb.db.TroubledDeliveries(ctx, 0)
			return len(tr) == 1 && tr[0].Failed && tr[0].Attempts == 1 && len(tb.forge.canWriteErrs) == 0
		})
	})
	t.Run("the forge's redelivery is accepted", func(t *testing.T) {
		if code, msg := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusAccepted {
			t.Fatalf("redelivery = %d %s, want 202", code, msg)
		}
		waitFor(t, 5*time.Second, "no run after the redelivery", func() bool { return len(tb.runs(t)) == 1 })
		if code, _ := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusOK {
			t.Errorf("a delivery acted on is redelivered: %d, want 200 (duplicate)", code)
		}
	})
}

// TestEveryReportSurvivesCrash: two pushes of one project end, and the
// process dies before any report was rendered. After the restart the
// status of each commit is posted. Before, run changes waited in memory
// and the restart re-reported only the newest run per project, so the
// first commit's status was never posted.
func TestEveryReportSurvivesCrash(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/cccp.db"
	one := func(c *Config) { c.Entries = func() []*index.Entry { return helloEntries[:1] } }
	db := openDB(t, path)
	tb := newTestBotOn(t, db, path, newFakeForge(), one)
	for i, sha := range []string{sha1, sha2} {
		ev := ghEvent(t, "push-event-5.json", fmt.Sprint("p", i), func(m map[string]any) { m["after"] = sha })
		if err := tb.route(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	tb.finishAll(t, store.Passed)
	db.Close() // the crash: nothing was rendered nor sent

	db2 := openDB(t, path)
	defer db2.Close()
	forge := newFakeForge()
	tb2 := newTestBotOn(t, db2, path, forge, func(c *Config) { one(c); c.OutboxPoll = 10 * time.Millisecond })
	runInBackground(t, tb2)
	waitFor(t, 10*time.Second, "statuses of both commits", func() bool {
		forge.mu.Lock()
		defer forge.mu.Unlock()
		for _, sha := range []string{sha1, sha2} {
			if forge.statuses["Codertocat/Hello-World "+sha+" cccp/hello/web:latest"].State != event.StateSuccess {
				return false
			}
		}
		return true
	})
}

// TestReportBackoffKept: the forge rate-limits a target for an hour; a
// newer report of the same target waits for that hour too. Before, every
// newer report was due at once.
func TestReportBackoffKept(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, func(c *Config) { c.Entries = func() []*index.Entry { return helloEntries[:1] } })
	if err := tb.route(ctx, ghEvent(t, "push-event-5.json", "p", nil)); err != nil {
		t.Fatal(err)
	}
	tb.rep.flush(ctx)
	tb.forge.fail, tb.forge.failErr = 1, &event.RetryableError{Op: "set status", After: time.Hour, Err: fmt.Errorf("rate limited")}
	tb.sendDue(ctx)
	tb.pipe.finish(ctx, tb.runs(t)[0].ID, store.Passed) // a newer report of the same target
	tb.rep.flush(ctx)
	due, err := tb.db.DueReports(ctx, tb.now.Add(59*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 0 {
		t.Errorf("a newer report of a rate-limited target is due before the hour: %+v", due[0].NextAttempt)
	}
}

// TestReportGivenUp: a report the forge refuses for good (a 4xx) is not
// tried again; it is kept with the reason, until a newer report of the
// target replaces it.
func TestReportGivenUp(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, func(c *Config) { c.Entries = func() []*index.Entry { return helloEntries[:1] } })
	if err := tb.route(ctx, ghEvent(t, "push-event-5.json", "p", nil)); err != nil {
		t.Fatal(err)
	}
	tb.rep.flush(ctx)
	tb.forge.fail, tb.forge.failErr = 5, &event.PermanentError{Op: "github create status", Status: 422, Err: fmt.Errorf("Validation Failed")}
	tb.sendDue(ctx)
	tb.now = tb.now.Add(24 * time.Hour)
	tb.sendDue(ctx)
	if n := tb.forge.fail; n != 4 {
		t.Errorf("the refused report was tried %d times, want 1", 5-n)
	}
	gone, err := tb.db.GivenUpReports(ctx, 0)
	if err != nil || len(gone) != 1 || !strings.Contains(gone[0].LastError, "422: Validation Failed") {
		t.Fatalf("given up = %+v, %v", gone, err)
	}
	tb.forge.fail = 0
	tb.pipe.finish(ctx, tb.runs(t)[0].ID, store.Passed)
	tb.rep.flush(ctx)
	if n := tb.sendDue(ctx); n != 1 {
		t.Errorf("a newer report of the target sent %d, want 1", n)
	}
}

// TestPrune: after Keep, the delivery IDs, the hashes of sent reports and
// the records and approvals of idle pull requests are forgotten; younger
// ones stay. Before, nothing was ever pruned.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, func(c *Config) { c.Keep = time.Hour })
	tb.now = time.Now()
	tb.forge.writers["writer"] = true
	hdr, body := prPayload(t, "pr-1", "writer", sha1)
	if code, _ := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	runBot(t, tb)
	tb.report(t)
	if err := tb.db.PutMeta(ctx, nsOkToTest, prKey("github", "Codertocat/Hello-World", 1), []byte(sha1)); err != nil {
		t.Fatal(err)
	}
	count := func(ns string) int {
		c := 0
		tb.db.PruneMeta(ctx, ns, func(string, []byte) bool { c++; return false })
		return c
	}
	if count(report.NsSent) == 0 || count(nsPR) != 1 || count(nsOkToTest) != 1 {
		t.Fatalf("before: sent %d, prs %d, approvals %d", count(report.NsSent), count(nsPR), count(nsOkToTest))
	}
	tb.prune(ctx) // nothing is old yet
	if count(report.NsSent) == 0 || count(nsPR) != 1 {
		t.Fatal("pruned young state")
	}
	tb.now = tb.now.Add(2 * time.Hour)
	tb.prune(ctx)
	if s, p, a := count(report.NsSent), count(nsPR), count(nsOkToTest); s+p+a != 0 {
		t.Errorf("after Keep: sent %d, prs %d, approvals %d left", s, p, a)
	}
	if code, _ := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusAccepted {
		t.Errorf("the delivery ID was not pruned: redelivery = %d", code)
	}
}

// TestPullRequestLifecycle walks a pull request through the actions users
// expect cccp to follow, with GitHub's real payloads: opened as a draft
// (nothing runs), ready for review (runs), base changed to a branch no
// entry builds (the runs for the old base are cancelled), back to master
// (runs again), closed (its unfinished runs are cancelled). Before, every
// one of these but "opened" was ignored, and the runs went on.
func TestPullRequestLifecycle(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	tb.forge.writers["Codertocat"] = true
	step := func(file, delivery string, edit func(m map[string]any)) {
		t.Helper()
		ev := ghEvent(t, file, delivery, func(m map[string]any) {
			if edit != nil {
				edit(m)
			}
		})
		if err := tb.route(ctx, ev); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	unfinished := func() int {
		n := 0
		for _, r := range tb.runs(t) {
			if !r.State.Done() {
				n++
			}
		}
		return n
	}
	step("pull_request-converted-to-draft-1.json", "d1", nil)
	if n := len(tb.runs(t)); n != 0 {
		t.Fatalf("a draft ran %d pipelines", n)
	}
	tb.report(t)
	if c := tb.forge.Comments()["Codertocat/Hello-World#2 "+prMarker]; !strings.Contains(c, "draft") {
		t.Errorf("comment = %q, want it to say the draft waits", c)
	}
	step("pull_request-ready-for-review-1.json", "d2", nil)
	if n := unfinished(); n != 2 {
		t.Fatalf("ready for review: %d unfinished runs, want 2", n)
	}
	step("pull_request-opened-1.json", "d3", func(m map[string]any) {
		obj(m, "pull_request", "base")["ref"] = "release"
		m["action"] = "edited"
		m["changes"] = map[string]any{"base": map[string]any{"ref": map[string]any{"from": "master"}}}
	})
	if n := unfinished(); n != 0 {
		t.Errorf("base changed to an untracked branch: %d runs for the old base still unfinished", n)
	}
	step("pull_request-opened-1.json", "d4", func(m map[string]any) {
		m["action"] = "edited"
		m["changes"] = map[string]any{"base": map[string]any{"ref": map[string]any{"from": "release"}}}
	})
	if n := unfinished(); n != 2 {
		t.Fatalf("base back to master: %d unfinished runs, want 2", n)
	}
	step("pull_request-closed-1.json", "d5", nil)
	if n := unfinished(); n != 0 {
		t.Errorf("closed: %d runs unfinished", n)
	}
	if len(tb.runs(t)) != 4 {
		t.Errorf("runs = %d, want 4 (2 when ready, 2 after the base came back)", len(tb.runs(t)))
	}
}

// TestCommentExplains: the comment shows what explains a failure, the
// failed check's own output and the log lines the run page highlights,
// not the last lines of the log (cccp's progress lines, container IDs).
// Before, it showed the last 20 lines, and the error line scrolled away.
func TestCommentExplains(t *testing.T) {
	ctx := context.Background()
	var log []string
	log = append(log, "STEP 3/4: RUN make", "cc -o app main.c", "main.c:12: error: 'x' undeclared")
	for i := range 30 {
		log = append(log, fmt.Sprintf("cccp: container 4f2a%04d progress line %d", i, i))
	}
	log = append(log, "", "cccp: stage test ended")
	tb := newTestBot(t, func(c *Config) {
		c.LogTail = func(_, _ string, n int) ([]string, error) { return log[max(0, len(log)-n):], nil }
	})
	web, cli := prWithRuns(t, tb)
	tb.pipe.finish(ctx, cli.ID, store.Passed)
	if _, err := tb.db.UpdateRun(ctx, web.ID, func(r *store.Run) error {
		r.State = store.Failed
		r.Stages[1] = store.Stage{Name: "test", State: store.Failed, Reason: "ChecksFailed", Error: "failed: user-script", Checks: []store.Check{
			{Name: "smoke", State: store.Passed},
			{Name: "user-script", State: store.Failed, Explain: []string{"test.sh: expected 200, got 500"}},
		}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	body := tb.forge.Comments()["Codertocat/Hello-World#1 "+prMarker]
	for _, want := range []string{"user-script: test.sh: expected 200, got 500", "main.c:12: error: 'x' undeclared", "cccp: stage test ended",
		"cccp: ChecksFailed: failed: user-script"} {
		if !strings.Contains(body, want) {
			t.Errorf("comment lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "progress line 15") {
		t.Errorf("comment shows progress noise:\n%s", body)
	}
}

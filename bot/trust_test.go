package bot

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/gitlab"
	"github.com/cccp-project/cccp/bot/gitlab/gitlabtest"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
)

// glEvent parses a GitLab example (testdata/gitlab) with the real parser,
// after edit.
func glEvent(t *testing.T, file, delivery string, edit func(m map[string]any)) *event.Event {
	t.Helper()
	raw, err := os.ReadFile("../testdata/gitlab/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	body, _ := json.Marshal(m)
	wh, err := gitlab.NewWebhook([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := wh.Parse(http.Header{"X-Gitlab-Event-Uuid": {delivery}}, body)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return ev
}

// newGitLabBot is a bot whose GitLab forge is the real client against the
// recording GitLab double.
func newGitLabBot(t *testing.T, entries []*index.Entry) (*testBot, *gitlabtest.Server) {
	srv := gitlabtest.New(t)
	c, err := gitlab.NewClient(gitlab.Config{Token: "glpat-x", BaseURL: srv.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := gitlab.NewWebhook([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	tb := newTestBot(t, func(cfg *Config) {
		cfg.Entries = func() []*index.Entry { return entries }
		cfg.Forges[event.GitLab] = Forge{Webhook: wh, Client: c, Secret: testSecret}
	})
	return tb, srv
}

// TestGitLabTrustsTheAuthor: a maintainer (the event's user) reopening or
// updating an outsider's fork MR does not make it trusted: the MR's author
// (author_id, looked up through the API) is whose code runs.
func TestGitLabTrustsTheAuthor(t *testing.T) {
	ctx := context.Background()
	tb, srv := newGitLabBot(t, []*index.Entry{entry("gl", "test", "http://example.com/gitlabhq/gitlab-test.git", "master")})
	srv.Access["user1"] = 40 // the example's user, a maintainer
	srv.Projects[77] = "outsider/gitlab-test"
	srv.AddMergeRequest(map[string]any{"sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "source_branch": "ms-viewport",
		"target_branch": "master", "source_project_id": 77, "target_project_id": 1, "state": "opened",
		"author": map[string]any{"id": 51, "username": "outsider"}})
	ev := glEvent(t, "merge_request-open.json", "gl-1", func(m map[string]any) {
		obj(m, "object_attributes")["source_project_id"] = 77.0
	})
	if err := tb.route(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if got := tb.pipe.Requests(); len(got) != 0 {
		t.Errorf("runs %q, want none: the author is an outsider", got)
	}
	srv.Access["outsider"] = 30 // now a developer: the same MR runs, once the cached answer expired
	tb.now = tb.now.Add(permTTL + 1)
	if err := tb.route(ctx, glEvent(t, "merge_request-open.json", "gl-2", nil)); err != nil {
		t.Fatal(err)
	}
	if got := tb.pipe.Requests(); len(got) != 1 {
		t.Errorf("runs %q, want one once the author may write", got)
	}
}

// TestGitLabOkToTestBuildsTheFork: /ok-to-test on a fork MR (the note
// example, edited to come from a fork) builds the fork at the head the note
// was written on, not the target project.
func TestGitLabOkToTestBuildsTheFork(t *testing.T) {
	ctx := context.Background()
	tb, srv := newGitLabBot(t, []*index.Entry{entry("gl", "test", "http://example.com/gitlab-org/gitlab-test.git", "markdown")})
	srv.Access["root"] = 40 // the example note's author
	srv.Projects[77] = "outsider/gitlab-test"
	const head = "562e173be03b8ff2efb05345d12df18815438a4b"
	srv.AddMergeRequest(map[string]any{"sha": head, "source_branch": "feature", "target_branch": "markdown",
		"source_project_id": 77, "target_project_id": 5, "state": "opened",
		"author": map[string]any{"id": 8, "username": "outsider"}})
	ev := glEvent(t, "note-merge-request.json", "gl-n1", func(m map[string]any) {
		obj(m, "object_attributes")["note"] = "/ok-to-test"
		obj(m, "merge_request")["source_project_id"] = 77.0
	})
	if err := tb.route(ctx, ev); err != nil {
		t.Fatal(err)
	}
	want := []string{"pr gl/test:latest pull_request@562e173 from https://gitlab.example/outsider/gitlab-test.git"}
	if got := tb.pipe.Requests(); !slices.Equal(got, want) {
		t.Errorf("runs %q, want %q", got, want)
	}
}

// TestApprovalBoundToReview: /ok-to-test approves what was reviewed: the
// head cccp announced (GitHub's comments carry no head), or the commit
// named; a push between the comment and its processing is not approved,
// and replaying the signed comment under a new delivery ID does nothing.
func TestApprovalBoundToReview(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	tb.forge.writers["maintainer"] = true
	tb.forge.prs[1] = &event.PullRequest{Number: 1, HeadSHA: sha1, HeadRef: "changes", BaseRef: "master",
		HeadCloneURL: "https://github.com/outsider/Hello-World.git", Author: "outsider", Fork: true}
	route := func(ev *event.Event) {
		t.Helper()
		if err := tb.route(ctx, ev); err != nil {
			t.Fatal(err)
		}
		tb.report(t)
	}
	route(prEvent(t, "a1", "outsider", sha1)) // waiting for sha1
	// The outsider pushes sha2 just before the maintainer's approval of
	// sha1 is processed: the API answers sha2.
	tb.forge.prs[1].HeadSHA = sha2
	ok := commentEvent(t, "a2", "maintainer", "/ok-to-test")
	route(ok)
	if got := tb.pipe.Requests(); len(got) != 0 {
		t.Fatalf("runs %q, want none: sha2 was not reviewed", got)
	}
	if reply := tb.forge.Comments()["Codertocat/Hello-World#1 "+replyMarker(ok.Comment.ID)]; !strings.Contains(reply, "Approved `1111111`, but the head is now `2222222`") {
		t.Errorf("reply = %q, want it to say the head moved", reply)
	}
	route(prEvent(t, "a3", "outsider", sha2))
	if got := tb.pipe.Requests(); len(got) != 0 {
		t.Fatalf("runs %q after the push event, want none", got)
	}
	// The same signed comment again under a new delivery ID.
	replay := commentEvent(t, "a2", "maintainer", "/ok-to-test")
	replay.DeliveryID = "a2-replayed"
	route(replay)
	if got := tb.pipe.Requests(); len(got) != 0 {
		t.Fatalf("runs %q after a replayed comment, want none", got)
	}
	// A comment written before the head moved, worked after the push's
	// event: it approves neither the head it did not see nor the one
	// replaced, and says how to approve.
	tb.forge.prs[1].HeadSHA = sha3
	route(ghEvent(t, "pull_request-synchronize-1.json", "a3b", func(m map[string]any) {
		m["number"] = 1.0
		pr := obj(m, "pull_request")
		pr["number"], pr["updated_at"] = 1.0, "2019-05-15T15:40:00Z"
		obj(pr, "user")["login"] = "outsider"
		obj(pr, "head")["sha"] = sha3
	}))
	early := commentEvent(t, "a3c", "maintainer", "/ok-to-test") // written 15:30
	route(early)
	if got := tb.pipe.Requests(); len(got) != 0 {
		t.Fatalf("runs %q, want none: the comment was written before %s", got, report.Short(sha3))
	}
	if reply := tb.forge.Comments()["Codertocat/Hello-World#1 "+replyMarker(early.Comment.ID)]; !strings.Contains(reply, "/ok-to-test "+sha3) {
		t.Errorf("reply = %q, want it to ask for the commit", reply)
	}
	tb.forge.prs[1].HeadSHA = sha2
	route(prEvent(t, "a3d", "outsider", sha2))
	// Naming the commit approves exactly it.
	route(commentEvent(t, "a4", "maintainer", "/ok-to-test "+sha2))
	want := []string{"pr hello/cli:latest pull_request@2222222 from https://github.com/outsider/Hello-World.git",
		"pr hello/web:latest pull_request@2222222 from https://github.com/outsider/Hello-World.git"}
	if got := tb.pipe.Requests(); !slices.Equal(got, want) {
		t.Errorf("runs %q, want %q", got, want)
	}
	// Approving the older commit by name does not withdraw sha2's.
	route(commentEvent(t, "a5", "maintainer", "/ok-to-test "+sha1))
	tb.now = tb.now.Add(permTTL + 1)
	route(prEvent(t, "a6", "outsider", sha2))
	if got := tb.pipe.Requests(); len(got) != 4 {
		t.Errorf("runs %q, want sha2's two again: still approved", got)
	}
	if v, _ := tb.db.GetMeta(ctx, nsOkToTest, prKey(event.GitHub, "Codertocat/Hello-World", 1)); string(v) != sha1+"\n"+sha2 {
		t.Errorf("approvals %q, want sha1 then sha2", v)
	}
}

// TestWaitingShowsPendingStatus: a pull request waiting for /ok-to-test
// shows a pending status per pipeline that says so, which the run's own
// status replaces once approved.
func TestWaitingShowsPendingStatus(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	tb.forge.writers["maintainer"] = true
	tb.forge.prs[1] = &event.PullRequest{Number: 1, HeadSHA: sha1, HeadRef: "changes", BaseRef: "master", Author: "outsider"}
	if err := tb.route(ctx, prEvent(t, "w1", "outsider", sha1)); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	for _, project := range []string{"hello/web:latest", "hello/cli:latest"} {
		st := tb.forge.statuses["Codertocat/Hello-World "+sha1+" cccp/"+project]
		if st.State != event.StateQueued || !strings.Contains(st.Title, "/ok-to-test") || !strings.Contains(st.Summary, "/ok-to-test "+sha1) {
			t.Errorf("status of %s = %+v, want queued, waiting for /ok-to-test", project, st)
		}
	}
	if err := tb.route(ctx, commentEvent(t, "w2", "maintainer", "/ok-to-test")); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	if st := tb.forge.statuses["Codertocat/Hello-World "+sha1+" cccp/hello/web:latest"]; strings.Contains(st.Title, "/ok-to-test") {
		t.Errorf("status after approval = %+v, want the run's", st)
	}
}

// TestRefusalQuota: a stranger's commands cost one permission look-up a
// minute and one reply per pull request; replies of all kinds are rate
// limited.
func TestRefusalQuota(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	for i := range 5 {
		ev := commentEvent(t, "q"+string(rune('a'+i)), "outsider", "/retest")
		if err := tb.route(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	var lookups, replies int
	for _, c := range tb.forge.Calls() {
		switch {
		case c == "can-write outsider":
			lookups++
		case strings.HasPrefix(c, "comment "):
			replies++
		}
	}
	if lookups != 1 || replies != 1 {
		t.Errorf("%d permission look-ups and %d replies for 5 commands, want 1 and 1: %q", lookups, replies, tb.forge.Calls())
	}
	for i := range 3 * replyBurst {
		who := "stranger" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		if err := tb.route(ctx, commentEvent(t, "r"+who, who, "/cancel")); err != nil {
			t.Fatal(err)
		}
	}
	replies = 0
	for _, c := range tb.forge.Calls() {
		if strings.HasPrefix(c, "comment ") {
			replies++
		}
	}
	if replies > replyBurst {
		t.Errorf("%d replies to %d strangers at once, want at most %d", replies, 3*replyBurst, replyBurst)
	}
}

// TestTrialPinnedAtApproval: an index pull request's trial builds the
// proposed application's commit resolved when the trial was approved (a
// real git repository), and /retest builds that commit again even after
// the branch moved.
func TestTrialPinnedAtApproval(t *testing.T) {
	testgit.Require(t)
	ctx := context.Background()
	app := testgit.Repo(t, "main", map[string]string{"Dockerfile": "FROM scratch\n"})
	first := strings.TrimSpace(testgit.Run(t, app, "rev-parse", "HEAD"))
	proposed := entry("new", "app", app, "main")
	tb := newTestBot(t, func(c *Config) {
		c.Index = IndexRepo{Forge: event.GitHub, FullName: "Codertocat/Hello-World"}
		c.IndexPR = fakeIndexPR{res: &IndexCheck{Changed: []IndexEntryCheck{{Entry: proposed}}}}
	})
	tb.forge.writers["Codertocat"] = true
	tb.forge.writers["maintainer"] = true
	pr := ghEvent(t, "pull_request-opened-1.json", "t1", nil)
	if err := tb.route(ctx, pr); err != nil {
		t.Fatal(err)
	}
	testgit.Write(t, app, map[string]string{"Dockerfile": "FROM scratch\nRUN evil\n"})
	testgit.Commit(t, app, "after the review")
	tb.finishAll(t, store.Failed)
	tb.forge.prs[2] = pr.PR
	retest := ghEvent(t, "issue_comment-created-1.json", "t2", func(m map[string]any) {
		obj(m, "issue")["number"] = 2.0
		obj(m, "issue")["pull_request"] = map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/2"}
		obj(m, "comment")["body"] = "/retest"
		obj(m, "comment", "user")["login"] = "maintainer"
	})
	if err := tb.route(ctx, retest); err != nil {
		t.Fatal(err)
	}
	var commits []string
	for _, req := range tb.pipe.requests {
		commits = append(commits, req.Commit)
	}
	if want := []string{first, first}; !slices.Equal(commits, want) {
		t.Errorf("trial commits %q, want %q (the commit at approval, twice)", commits, want)
	}
}

// TestCommentEscapesStrangerText: an entry key in a failing index pull
// request cannot break out of its code span, its table cell or its line.
func TestCommentEscapesStrangerText(t *testing.T) {
	ctx := context.Background()
	evil := entry("x` | <img src=x onerror=alert(1)> |\n# Approved", "job", "https://github.com/new/app", "main")
	tb := newTestBot(t, func(c *Config) {
		c.Index = IndexRepo{Forge: event.GitHub, FullName: "Codertocat/Hello-World"}
		c.IndexPR = fakeIndexPR{res: &IndexCheck{
			Changed: []IndexEntryCheck{{Entry: evil, Findings: []index.Finding{{Severity: index.Error, Rule: "id", Message: "bad `id`\n| x |"}}}},
			Removed: []string{"gone`\n<b>x</b>"},
		}}
	})
	tb.forge.writers["Codertocat"] = true
	if err := tb.route(ctx, ghEvent(t, "pull_request-opened-1.json", "m1", nil)); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	comment := tb.forge.Comments()["Codertocat/Hello-World#2 "+prMarker]
	for _, line := range strings.Split(comment, "\n") {
		if strings.HasPrefix(line, "# Approved") || strings.HasPrefix(line, "<b>") {
			t.Errorf("stranger text starts a line: %q", line)
		}
		if strings.Count(line, "`")%2 != 0 {
			t.Errorf("unbalanced code span: %q", line)
		}
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| ---") {
			if cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); cells != 5 {
				t.Errorf("row with %d pipes, want 5: %q", cells, line)
			}
		}
	}
	st := tb.forge.statuses["Codertocat/Hello-World ec26c3e57ca3a959ca5aad62de7213c562f8c821 cccp/index"]
	for _, line := range strings.Split(st.Summary, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| ---") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 4 {
			t.Errorf("status row broken: %q", line)
		}
	}
}

// TestReplayedCommentActsOnce: the same signed comment body posted to the
// webhook endpoint again under a new delivery ID (a replay) is accepted and
// does nothing: commands act once per forge, repository and comment.
func TestReplayedCommentActsOnce(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	tb.forge.writers["maintainer"] = true
	tb.forge.prs[1] = &event.PullRequest{Number: 1, HeadSHA: sha1, HeadRef: "changes", BaseRef: "master", Author: "outsider"}
	if err := tb.route(ctx, prEvent(t, "p1", "outsider", sha1)); err != nil {
		t.Fatal(err)
	}
	hdr, body := ghPayload(t, "issue_comment-created-1.json", func(m map[string]any) {
		obj(m, "issue")["pull_request"] = map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
		obj(m, "comment")["body"] = "/ok-to-test"
		obj(m, "comment")["created_at"] = "2019-05-15T15:30:00Z"
		obj(m, "comment", "user")["login"] = "maintainer"
		obj(m, "sender")["login"] = "maintainer"
	})
	hdr.Set("X-GitHub-Delivery", "c-1")
	if code, msg := post(t, tb, "/webhooks/github", hdr, body); code != 202 {
		t.Fatalf("comment: %d %s", code, msg)
	}
	runBot(t, tb)
	if got := len(tb.pipe.Requests()); got != 2 {
		t.Fatalf("%d runs after the approval, want 2", got)
	}
	// The outsider pushes; then the signed body comes again, to the bot
	// restarted over the same file.
	tb2 := newTestBotOn(t, tb.db, tb.path, tb.forge, nil)
	tb.forge.prs[1].HeadSHA = sha2
	if err := tb2.route(ctx, prEvent(t, "p2", "outsider", sha2)); err != nil {
		t.Fatal(err)
	}
	hdr.Set("X-GitHub-Delivery", "c-1-replayed")
	if code, msg := post(t, tb2, "/webhooks/github", hdr, body); code != 202 {
		t.Fatalf("replay: %d %s", code, msg)
	}
	runBot(t, tb2)
	if got := len(tb.runs(t)); got != 2 {
		t.Errorf("%d runs after the replay, want the first approval's 2 only", got)
	}
}

// TestWaitingIndexCheck: an index pull request from someone without write
// access shows its one check pending, saying what it waits for.
func TestWaitingIndexCheck(t *testing.T) {
	tb := newTestBot(t, func(c *Config) {
		c.Index = IndexRepo{Forge: event.GitHub, FullName: "Codertocat/Hello-World"}
		c.IndexPR = fakeIndexPR{res: &IndexCheck{}}
	})
	if err := tb.route(context.Background(), ghEvent(t, "pull_request-opened-1.json", "wi1", nil)); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	st := tb.forge.statuses["Codertocat/Hello-World ec26c3e57ca3a959ca5aad62de7213c562f8c821 cccp/index"]
	if st.State != event.StateQueued || st.Title != "waiting for /ok-to-test" || !strings.Contains(st.Summary, "/ok-to-test ec26c3e57ca3a959ca5aad62de7213c562f8c821") {
		t.Errorf("index check = %+v, want queued, waiting for /ok-to-test", st)
	}
	if got := tb.pipe.Requests(); len(got) != 0 {
		t.Errorf("runs %q, want none", got)
	}
}

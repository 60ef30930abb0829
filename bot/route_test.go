package bot

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/bot/route"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// TestRequests routes real GitHub example payloads, parsed by the real
// parser, against index entries. Edits to the examples are named.
func TestRequests(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		edit    func(m map[string]any)
		want    []string // kind project cause@sha [from url]
		ignored bool     // the parser refuses it
	}{
		{name: "push to tracked branch: https, scp-like and case-different URLs match",
			file: "push-event-5.json",
			want: []string{"branch hello/cli:latest push@6113728", "branch hello/web:latest push@6113728"}},
		{name: "push to another branch",
			file: "push-event-5.json",
			edit: func(m map[string]any) { m["ref"] = "refs/heads/next" },
			want: []string{"branch hello/next:latest push@6113728"}},
		{name: "push to an untracked branch",
			file: "push-event-5.json",
			edit: func(m map[string]any) { m["ref"] = "refs/heads/feature" }},
		{name: "branch deletion (edited: deleted, zero after)",
			file: "push-event-5.json",
			edit: func(m map[string]any) {
				m["deleted"] = true
				m["after"] = "0000000000000000000000000000000000000000"
			}},
		{name: "tag push is refused by the parser", file: "push-event-1.json", ignored: true},
		{name: "pull request opened",
			file: "pull_request-opened-1.json",
			want: []string{"pr hello/cli:latest pull_request@ec26c3e", "pr hello/web:latest pull_request@ec26c3e"}},
		{name: "pull request synchronize", file: "pull_request-synchronize-1.json",
			want: []string{"pr hello/cli:latest pull_request@ec26c3e", "pr hello/web:latest pull_request@ec26c3e"}},
		{name: "pull request reopened", file: "pull_request-reopened-1.json",
			want: []string{"pr hello/cli:latest pull_request@ec26c3e", "pr hello/web:latest pull_request@ec26c3e"}},
		{name: "pull request from a fork builds the fork (edited: head repo)",
			file: "pull_request-opened-1.json",
			edit: func(m map[string]any) {
				repo := obj(m, "pull_request", "head", "repo")
				repo["full_name"] = "forker/Hello-World"
				repo["clone_url"] = "https://github.com/forker/Hello-World.git"
				repo["id"] = 1.0
			},
			want: []string{"pr hello/cli:latest pull_request@ec26c3e from https://github.com/forker/Hello-World.git",
				"pr hello/web:latest pull_request@ec26c3e from https://github.com/forker/Hello-World.git"}},
		{name: "pull request against an untracked base",
			file: "pull_request-opened-1.json",
			edit: func(m map[string]any) { obj(m, "pull_request", "base")["ref"] = "release" }},
		{name: "pull request closed asks for no run", file: "pull_request-closed-1.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := ghPayload(t, tt.file, tt.edit)
			h.Set("X-GitHub-Delivery", "d1")
			ev, err := ghWebhook(t).Parse(h, body)
			if tt.ignored {
				if !errors.Is(err, event.ErrIgnored) {
					t.Fatalf("Parse = %v, want ErrIgnored", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var reqs []pipeline.Request
			switch ev.Kind {
			case event.KindPush:
				reqs = route.PushRequests(ev, helloEntries)
			case event.KindPullRequest:
				reqs = route.PRRequests(ev, helloEntries)
			}
			var got []string
			for _, r := range reqs {
				s := string(r.Kind) + " " + r.Project + " " + string(r.Cause.Kind) + "@" + report.Short(r.Commit)
				if r.GitURL != "" {
					s += " from " + r.GitURL
				}
				got = append(got, s)
				if r.Cause.DeliveryID != "d1" || r.Cause.Forge != event.GitHub || r.Cause.Repo != "Codertocat/Hello-World" {
					t.Errorf("cause %+v lacks the delivery, forge or repository", r.Cause)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("requests:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// commentEvent is the issue_comment example edited to be a comment on a
// pull request (the examples only comment on issues) with body. Each
// delivery is its own comment (its ID derives from the delivery's), written
// at 15:30, after the pull request examples' last update (15:20:33).
func commentEvent(t *testing.T, delivery, user, body string) *event.Event {
	return ghEvent(t, "issue_comment-created-1.json", delivery, func(m map[string]any) {
		obj(m, "issue")["pull_request"] = map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
		c := obj(m, "comment")
		c["body"] = body
		c["id"] = float64(commentIDOf(delivery))
		c["created_at"] = "2019-05-15T15:30:00Z"
		obj(c, "user")["login"] = user
		obj(m, "sender")["login"] = user
	})
}

func prEvent(t *testing.T, delivery, author, sha string) *event.Event {
	return ghEvent(t, "pull_request-opened-1.json", delivery, func(m map[string]any) {
		m["number"] = 1.0 // the comment example's pull request
		pr := obj(m, "pull_request")
		pr["number"] = 1.0
		obj(pr, "user")["login"] = author
		obj(pr, "head")["sha"] = sha
		obj(pr, "head", "repo")["full_name"] = author + "/Hello-World"
		obj(pr, "head", "repo")["clone_url"] = "https://github.com/" + author + "/Hello-World.git"
		obj(m, "sender")["login"] = author
	})
}

// commentIDOf derives a comment ID from a delivery ID.
func commentIDOf(delivery string) int64 {
	var h int64 = 492700400
	for _, c := range delivery {
		h = h*31 + int64(c)
	}
	return h & (1<<40 - 1)
}

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
	sha3 = "3333333333333333333333333333333333333333"
)

// TestTrustAndCommands walks one pull request from an outside contributor
// through the trust rule and the comment commands.
func TestTrustAndCommands(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	tb.forge.writers["maintainer"] = true
	tb.forge.prs[1] = &event.PullRequest{Number: 1, HeadSHA: sha1, HeadRef: "changes", BaseRef: "master",
		HeadCloneURL: "https://github.com/outsider/Hello-World.git", Author: "outsider", Fork: true}
	replyKey := func(commentID int64) string {
		return "Codertocat/Hello-World#1 " + replyMarker(commentID)
	}

	steps := []struct {
		name      string
		ev        *event.Event
		setHead   string // the forge's head SHA before the step
		finish    map[string]store.State
		wantRuns  []string // all requests so far
		wantReply string   // substring of the reply to the comment
		noReply   bool     // the comment gets no reply
		wantPR    string   // substring of the PR comment
	}{
		{name: "outsider opens: nothing runs", ev: prEvent(t, "d1", "outsider", sha1),
			wantPR: "comment `/ok-to-test`"},
		{name: "outsider approves himself: refused", ev: commentEvent(t, "d2", "outsider", "/ok-to-test"),
			wantReply: "only be used by people with write access"},
		{name: "outsider retests: answered once per person and pull request, so silent now", ev: commentEvent(t, "d3", "outsider", "/retest"),
			noReply: true},
		{name: "maintainer approves: runs for the head", ev: commentEvent(t, "d4", "maintainer", "please\n/ok-to-test"),
			wantRuns: []string{"pr hello/cli:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/web:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git"},
			wantPR: "pipelines of `1111111`"},
		{name: "one fails, one passes; /retest re-runs the failed one",
			finish: map[string]store.State{"hello/web:latest": store.Failed, "hello/cli:latest": store.Passed},
			ev:     commentEvent(t, "d5", "maintainer", "/retest"),
			wantRuns: []string{"pr hello/cli:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/web:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/web:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git"}},
		{name: "/retest all re-runs both",
			finish: map[string]store.State{"hello/web:latest": store.Passed},
			ev:     commentEvent(t, "d6", "maintainer", "/retest all"),
			wantRuns: []string{"pr hello/cli:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/cli:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/web:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/web:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git",
				"pr hello/web:latest pull_request@1111111 from https://github.com/outsider/Hello-World.git"}},
		{name: "/retest with nothing failed replies",
			finish:    map[string]store.State{"hello/web:latest": store.Passed, "hello/cli:latest": store.Passed},
			ev:        commentEvent(t, "d7", "maintainer", "/retest"),
			wantReply: "Nothing to retest"},
		{name: "outsider pushes a new head: the approval does not carry over",
			setHead: sha2, ev: prEvent(t, "d8", "outsider", sha2),
			wantPR: "comment `/ok-to-test` to run them for `2222222`"},
		{name: "a misused command gets the usage", ev: commentEvent(t, "d9", "maintainer", "/retest everything"),
			wantReply: "does not take"},
	}
	var all []string
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.setHead != "" {
				tb.forge.prs[1].HeadSHA = s.setHead
			}
			for _, r := range tb.runs(t) {
				if st, ok := s.finish[r.Project]; ok && !r.State.Done() {
					tb.pipe.finish(ctx, r.ID, st)
				}
			}
			if err := tb.route(ctx, s.ev); err != nil {
				t.Fatal(err)
			}
			tb.report(t)
			if s.wantRuns != nil {
				all = s.wantRuns
			}
			if got := tb.pipe.Requests(); !slices.Equal(got, all) {
				t.Errorf("runs:\n got %q\nwant %q", got, all)
			}
			comments := tb.forge.Comments()
			reply, replied := "", false
			if s.ev.Comment != nil {
				reply, replied = comments[replyKey(s.ev.Comment.ID)]
			}
			if s.wantReply != "" && !strings.Contains(reply, s.wantReply) {
				t.Errorf("reply = %q, want it to contain %q", reply, s.wantReply)
			}
			if s.noReply && replied {
				t.Errorf("reply %q, want none", reply)
			}
			pr := comments["Codertocat/Hello-World#1 "+prMarker]
			if s.wantPR != "" && !strings.Contains(pr, s.wantPR) {
				t.Errorf("PR comment = %q, want it to contain %q", pr, s.wantPR)
			}
		})
	}
	t.Run("cancel cancels the unfinished runs", func(t *testing.T) {
		tb.forge.prs[1].HeadSHA = sha1
		if err := tb.route(ctx, commentEvent(t, "d10", "maintainer", "/ok-to-test "+sha1)); err != nil {
			t.Fatal(err)
		}
		if err := tb.route(ctx, commentEvent(t, "d11", "maintainer", "/cancel")); err != nil {
			t.Fatal(err)
		}
		for _, r := range tb.runs(t) {
			if !r.State.Done() {
				t.Errorf("run %s of %s still %s", r.ID, r.Project, r.State)
			}
		}
		if len(tb.pipe.cancels) != 2 {
			t.Errorf("cancelled %v, want the 2 runs of the head", tb.pipe.cancels)
		}
	})
}

// TestCheckRerun: GitHub's Re-run button is /retest for that check; other
// apps' checks are not ours.
func TestCheckRerun(t *testing.T) {
	ctx := context.Background()
	tb := newTestBot(t, nil)
	tb.forge.writers["maintainer"] = true
	push := ghEvent(t, "push-event-5.json", "p1", nil)
	if err := tb.route(ctx, push); err != nil {
		t.Fatal(err)
	}
	tb.finishAll(t, store.Failed)
	rerun := func(name, user string) *event.Event {
		return ghEvent(t, "check_run-rerequested-1.json", "c-"+name+user, func(m map[string]any) {
			m["repository"] = obj(mustJSON(t, "push-event-5.json"), "repository")
			cr := obj(m, "check_run")
			cr["name"] = name
			cr["head_sha"] = push.After
			cr["pull_requests"] = []any{}
			obj(m, "sender")["login"] = user
		})
	}
	tests := []struct {
		name string
		ev   *event.Event
		want int // runs after
	}{
		{"another app's check (the example as published)", ghEvent(t, "check_run-rerequested-1.json", "c0", nil), 2},
		{"by a non-writer", rerun("cccp/hello/web:latest", "outsider"), 2},
		{"cccp/hello/web:latest by a writer", rerun("cccp/hello/web:latest", "maintainer"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tb.route(ctx, tt.ev); err != nil {
				t.Fatal(err)
			}
			if got := len(tb.runs(t)); got != tt.want {
				t.Errorf("%d runs, want %d", got, tt.want)
			}
		})
	}
	if last := tb.runs(t)[0]; last.Project != "hello/web:latest" || last.Cause.Kind != "retest" || last.Cause.Commit != push.After {
		t.Errorf("re-run = %s %s@%s, want hello/web:latest retest@%s", last.Project, last.Cause.Kind, last.Cause.Commit, push.After)
	}
}

// TestIndexRepo: a pull request on the index repository lints and
// trial-builds what it changes; a push to its default branch reloads.
func TestIndexRepo(t *testing.T) {
	ctx := context.Background()
	good := entry("new", "app", "https://github.com/new/app", "main")
	bad := entry("broken", "app", "ftp://nowhere", "main")
	var reloaded int
	entries := helloEntries // the index as merged; the push adds good
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return entries }
		c.Index = IndexRepo{Forge: event.GitHub, FullName: "Codertocat/Hello-World"}
		c.IndexPR = fakeIndexPR{res: &IndexCheck{
			Changed: []IndexEntryCheck{
				{Entry: good, Findings: []index.Finding{{Severity: index.Warning, Rule: "notify-email", Message: "no notify-email"}}},
				{Entry: bad, Findings: []index.Finding{{Severity: index.Error, Rule: "git-url", Message: "unsupported scheme"}}},
			},
		}}
		c.ResolveCommit = func(ctx context.Context, gitURL, branch string) (string, error) {
			return "c0ffee0000000000000000000000000000000000", nil // github.com cannot be reached here
		}
		c.ReloadIndex = func(ctx context.Context, ev *event.Event) ([]string, error) {
			reloaded++
			entries = append(slices.Clip(helloEntries), good)
			return []string{good.Key()}, nil
		}
	})
	tb.forge.writers["Codertocat"] = true

	if err := tb.route(ctx, ghEvent(t, "pull_request-opened-1.json", "i1", nil)); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	if got, want := tb.pipe.Requests(), []string{"trial new/app:latest index@ec26c3e"}; !slices.Equal(got, want) {
		t.Errorf("runs %q, want %q", got, want)
	}
	st := tb.forge.statuses["Codertocat/Hello-World ec26c3e57ca3a959ca5aad62de7213c562f8c821 cccp/index"]
	if st.State != event.StateRunning {
		t.Errorf("index check = %q (%s), want running", st.State, st.Title)
	}
	tb.finishAll(t, store.Passed)
	tb.report(t)
	st = tb.forge.statuses["Codertocat/Hello-World ec26c3e57ca3a959ca5aad62de7213c562f8c821 cccp/index"]
	if st.State != event.StateFailure || !strings.Contains(st.Summary, "`broken/app:latest` | ❌") {
		t.Errorf("index check = %q %q, want failure for broken/app:latest", st.State, st.Summary)
	}
	comment := tb.forge.Comments()["Codertocat/Hello-World#2 "+prMarker]
	for _, want := range []string{"index check of `ec26c3e`", "`new/app:latest` | ⚠️ warnings | ✅", "`broken/app:latest` | ❌ errors | not run", "unsupported scheme"} {
		if !strings.Contains(comment, want) {
			t.Errorf("index comment lacks %q:\n%s", want, comment)
		}
	}
	for _, c := range tb.forge.Calls() {
		if strings.Contains(c, "cccp/new/app") {
			t.Errorf("trial run reported on its own: %s", c)
		}
	}

	if err := tb.route(ctx, ghEvent(t, "push-event-5.json", "i2", nil)); err != nil {
		t.Fatal(err)
	}
	if reloaded != 1 {
		t.Errorf("index reloaded %d times, want 1", reloaded)
	}
	if got := tb.runs(t)[0]; got.Project != "new/app:latest" || got.Kind != types.KindBranch || got.Cause.Kind != "index" {
		t.Errorf("first build = %s %s %s, want new/app:latest branch index", got.Project, got.Kind, got.Cause.Kind)
	}
}

// TestSilent: events that must not make the bot speak or ask the forge.
func TestSilent(t *testing.T) {
	tests := []struct {
		name string
		ev   func(t *testing.T) *event.Event
	}{
		{"pull request on a repository no entry builds", func(t *testing.T) *event.Event {
			return ghEvent(t, "pull_request-opened-1.json", "s1", func(m map[string]any) {
				r := obj(m, "repository")
				r["full_name"], r["clone_url"], r["html_url"] = "someone/else", "https://github.com/someone/else.git", "https://github.com/someone/else"
			})
		}},
		{"cccp's own comment quoting a command", func(t *testing.T) *event.Event {
			return commentEvent(t, "s2", "cccp[bot]", prMarker+"\n/retest\n")
		}},
		{"a comment without a command", func(t *testing.T) *event.Event {
			return commentEvent(t, "s3", "outsider", "Looks good, but see > /retest in the docs")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestBot(t, nil)
			if err := tb.route(context.Background(), tt.ev(t)); err != nil {
				t.Fatal(err)
			}
			tb.report(t)
			if calls := tb.forge.Calls(); len(calls) != 0 {
				t.Errorf("forge calls %q, want none", calls)
			}
			if runs := tb.pipe.Requests(); len(runs) != 0 {
				t.Errorf("runs %q, want none", runs)
			}
		})
	}
}

// tagged is an entry of hello/web with another desired-tag.
func tagged(tag, branch string) *index.Entry {
	e := entry("hello", "web", "https://github.com/Codertocat/Hello-World", branch)
	e.DesiredTag = tag
	return e
}

// TestEntriesOfOneName: one name, app-id/job-id, has an entry per
// desired-tag; routing, re-runs and reports keep them apart by key.
func TestEntriesOfOneName(t *testing.T) {
	ctx := context.Background()
	t.Run("a push runs the entries of its branch only", func(t *testing.T) {
		entries := []*index.Entry{tagged("latest", "master"), tagged("7", "v7")}
		tests := []struct {
			name, ref string
			want      []string
		}{
			{"master", "refs/heads/master", []string{"branch hello/web:latest push@6113728"}},
			{"v7", "refs/heads/v7", []string{"branch hello/web:7 push@6113728"}},
			{"an untracked branch", "refs/heads/v6", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tb := newTestBot(t, func(c *Config) { c.Entries = func() []*index.Entry { return entries } })
				ev := ghEvent(t, "push-event-5.json", "p-"+tt.name, func(m map[string]any) { m["ref"] = tt.ref })
				if err := tb.route(ctx, ev); err != nil {
					t.Fatal(err)
				}
				if got := tb.pipe.Requests(); !slices.Equal(got, tt.want) {
					t.Errorf("runs %q, want %q", got, tt.want)
				}
				for _, r := range tb.runs(t) {
					if r.Branch != strings.TrimPrefix(tt.ref, "refs/heads/") {
						t.Errorf("run of %s on branch %q, want %q", r.Project, r.Branch, tt.ref)
					}
				}
			})
		}
	})

	// Both tags track master: one push builds the commit twice, and the
	// Re-run of one tag's check runs that tag again, not the other.
	both := []*index.Entry{tagged("latest", "master"), tagged("7", "master")}
	rerun := func(t *testing.T, name, sha string, pr map[string]any) *event.Event {
		return ghEvent(t, "check_run-rerequested-1.json", "c-"+name+"-"+report.Short(sha), func(m map[string]any) {
			m["repository"] = obj(mustJSON(t, "push-event-5.json"), "repository")
			cr := obj(m, "check_run")
			cr["name"], cr["head_sha"], cr["pull_requests"] = name, sha, []any{}
			if pr != nil {
				cr["pull_requests"] = []any{pr}
			}
			obj(m, "sender")["login"] = "maintainer"
		})
	}
	t.Run("a branch check re-runs its own tag", func(t *testing.T) {
		tb := newTestBot(t, func(c *Config) { c.Entries = func() []*index.Entry { return both } })
		tb.forge.writers["maintainer"] = true
		push := ghEvent(t, "push-event-5.json", "p1", nil)
		if err := tb.route(ctx, push); err != nil {
			t.Fatal(err)
		}
		tb.finishAll(t, store.Failed)
		tb.report(t)
		for _, tag := range []string{"latest", "7"} {
			key := "Codertocat/Hello-World " + push.After + " cccp/hello/web:" + tag
			if st := tb.forge.statuses[key]; st.State != event.StateFailure {
				t.Errorf("check cccp/hello/web:%s = %q, want its own failure", tag, st.State)
			}
		}
		steps := []struct {
			check string
			want  []string // all requests so far
		}{
			{"cccp/hello/web:7", []string{"branch hello/web:7 push@6113728", "branch hello/web:7 retest@6113728 from https://github.com/Codertocat/Hello-World", "branch hello/web:latest push@6113728"}},
			// cccp never names a check by the bare name; it is not a key.
			{"cccp/hello/web", []string{"branch hello/web:7 push@6113728", "branch hello/web:7 retest@6113728 from https://github.com/Codertocat/Hello-World", "branch hello/web:latest push@6113728"}},
		}
		for _, s := range steps {
			if err := tb.route(ctx, rerun(t, s.check, push.After, nil)); err != nil {
				t.Fatal(err)
			}
			if got := tb.pipe.Requests(); !slices.Equal(got, s.want) {
				t.Errorf("after re-run of %s: runs\n got %q\nwant %q", s.check, got, s.want)
			}
		}
		if last := tb.runs(t)[0]; last.Project != "hello/web:7" || last.Kind != types.KindBranch || last.Commit != push.After {
			t.Errorf("re-run = %s %s@%s, want hello/web:7 branch@%s", last.Project, last.Kind, last.Commit, push.After)
		}
	})
	t.Run("a pull request check re-runs its own tag", func(t *testing.T) {
		tb := newTestBot(t, func(c *Config) { c.Entries = func() []*index.Entry { return both } })
		tb.forge.writers["maintainer"] = true
		tb.forge.writers["Codertocat"] = true
		open := ghEvent(t, "pull_request-opened-1.json", "o1", nil)
		tb.forge.prs[open.PR.Number] = open.PR
		if err := tb.route(ctx, open); err != nil {
			t.Fatal(err)
		}
		tb.finishAll(t, store.Failed)
		// The pull request as check runs carry it (GitHub's example).
		pr := obj(mustJSON(t, "check_run-completed-1.json"), "check_run")["pull_requests"].([]any)[0].(map[string]any)
		if err := tb.route(ctx, rerun(t, "cccp/hello/web:7", open.PR.HeadSHA, pr)); err != nil {
			t.Fatal(err)
		}
		want := []string{"pr hello/web:7 pull_request@ec26c3e", "pr hello/web:7 pull_request@ec26c3e", "pr hello/web:latest pull_request@ec26c3e"}
		if got := tb.pipe.Requests(); !slices.Equal(got, want) {
			t.Errorf("runs\n got %q\nwant %q", got, want)
		}
		tb.report(t)
		body := tb.forge.Comments()["Codertocat/Hello-World#2 "+prMarker]
		for _, row := range []string{"| `hello/web:7` | 🕒 queued", "| `hello/web:latest` | ❌"} {
			if !strings.Contains(body, row) {
				t.Errorf("PR comment lacks %q:\n%s", row, body)
			}
		}
	})
}

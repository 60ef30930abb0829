package bot

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// pushCause is a push delivery's cause on the test repository.
func pushCause(delivery, sha string) store.Cause {
	return store.Cause{Kind: types.CausePush, Commit: sha, Forge: event.GitHub, Repo: "Codertocat/Hello-World", DeliveryID: delivery}
}

// foldedRun stores a queued run of sha2 into which the push of sha1 was
// folded, as the pipeline leaves it.
func foldedRun(t *testing.T, tb *testBot) *store.Run {
	t.Helper()
	r := &store.Run{Project: "hello/web:latest", Kind: types.KindBranch, Cause: pushCause("d2", sha2), Commit: sha2,
		Branch: "master", State: store.Queued, Stages: []store.Stage{{Name: types.StageBuild, State: store.Queued}},
		Folded: []store.Fold{{Cause: pushCause("d1", sha1), Commit: sha1, By: sha2, At: time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)}}}
	if err := tb.db.CreateRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFoldedCommitIsReportedSuperseded(t *testing.T) {
	tb := newTestBot(t, nil)
	r := foldedRun(t, tb)
	tb.Observe(r)
	tb.report(t)
	old := tb.forge.statuses["Codertocat/Hello-World "+sha1+" cccp/hello/web:latest"]
	want := "superseded by run " + r.ID + " (commit " + sha2[:12] + ")"
	if old.State != event.StateCancelled || !strings.Contains(old.Title, want) || !strings.Contains(old.Summary, want) {
		t.Errorf("folded commit's status %q %q %q; want cancelled, %q", old.State, old.Title, old.Summary, want)
	}
	if st := tb.forge.statuses["Codertocat/Hello-World "+sha2+" cccp/hello/web:latest"]; st.State != event.StateQueued {
		t.Errorf("the run's own commit: %q, want queued", st.State)
	}
}

func TestSupersededRunReportsWhy(t *testing.T) {
	tb := newTestBot(t, nil)
	ctx := context.Background()
	r := &store.Run{Project: "hello/web:latest", Kind: types.KindBranch, Cause: pushCause("d1", sha1), Commit: sha1,
		Branch: "master", State: store.Queued, Stages: []store.Stage{{Name: types.StageBuild, State: store.Queued}}}
	if err := tb.db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	const reason = "superseded by run 9 (commit 222222222222)" // as pipeline.Runner.Cancel records it
	if err := tb.pipe.Cancel(ctx, r.ID, reason); err != nil {
		t.Fatal(err)
	}
	tb.report(t)
	st := tb.forge.statuses["Codertocat/Hello-World "+sha1+" cccp/hello/web:latest"]
	// The reason is run text, so it is escaped for markdown: "\(" renders "(".
	if st.State != event.StateCancelled || !strings.Contains(st.Summary, `superseded by run 9 \(commit 222222222222\)`) {
		t.Errorf("superseded run's status %q, summary %q; want cancelled with %q", st.State, st.Summary, reason)
	}
}

func TestRedeliveryOfAFoldedPushQueuesNothing(t *testing.T) {
	tb := newTestBot(t, nil)
	r := foldedRun(t, tb)
	got, err := tb.enqueue(context.Background(), pipeline.Request{Project: "hello/web:latest", Kind: types.KindBranch,
		Cause: pushCause("d1", sha1), Commit: sha1})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || len(tb.pipe.Requests()) != 0 {
		t.Errorf("redelivered d1: run %s, pipeline asked %v; want run %s and nothing asked", got.ID, tb.pipe.Requests(), r.ID)
	}
}

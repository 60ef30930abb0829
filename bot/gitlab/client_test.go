package gitlab

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/gitlab/gitlabtest"
)

func newClient(t *testing.T, srv *gitlabtest.Server) *Client {
	t.Helper()
	c, err := NewClient(Config{Token: "glpat-secret", BaseURL: srv.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetStatus(t *testing.T) {
	srv := gitlabtest.New(t)
	c := newClient(t, srv)
	ctx := context.Background()
	states := []event.State{event.StateQueued, event.StateRunning, event.StateRunning, event.StateFailure, event.StateCancelled}
	for _, s := range states {
		st := event.Status{Name: "cccp/app/build", SHA: "abc", State: s, Title: strings.Repeat("ü", 300), DetailsURL: "https://cccp.example/r/1"}
		if err := c.SetStatus(ctx, "group/sub/app", st); err != nil {
			t.Fatalf("SetStatus(%s): %v", s, err)
		}
	}
	var got []string
	for _, st := range srv.Statuses() {
		got = append(got, st.State)
		if st.Name != "cccp/app/build" || st.TargetURL != "https://cccp.example/r/1" || len([]rune(st.Description)) != 140 {
			t.Errorf("status = %+v", st)
		}
	}
	// The repeated running is refused by GitLab and counts as done.
	if strings.Join(got, ",") != "pending,running,failed,canceled" {
		t.Errorf("states = %v", got)
	}
	for _, call := range srv.Calls() {
		if !strings.HasPrefix(call.Path, "/api/v4/projects/group%2Fsub%2Fapp/statuses/abc") || call.Auth != "glpat-secret" {
			t.Errorf("unexpected call %s (token %q)", call, call.Auth)
		}
	}
}

func TestUpsertNote(t *testing.T) {
	srv := gitlabtest.New(t)
	srv.PageSize = 2
	srv.AddNote(4, "alice", "lgtm", false)
	srv.AddNote(4, "gitlab", "mentioned <!-- cccp:summary --> in a system note", true)
	srv.AddNote(4, "bob", "hm", false)
	c := newClient(t, srv)
	ctx := context.Background()
	const marker = "<!-- cccp:summary -->"
	id1, err := c.UpsertComment(ctx, "group/app", 4, marker, "one")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := c.UpsertComment(ctx, "group/app", 4, marker, "two")
	if err != nil || id1 != id2 {
		t.Fatalf("second upsert = %d, %v; want id %d", id2, err, id1)
	}
	var writes []string
	for _, call := range srv.Calls() {
		if call.Method != http.MethodGet {
			writes = append(writes, call.Method)
		}
	}
	if strings.Join(writes, ",") != "POST,PUT" {
		t.Errorf("writes = %v, want POST then PUT", writes)
	}
	ours := 0
	for _, n := range srv.Notes(4) {
		if !n.System && strings.Contains(n.Body, marker) {
			ours++
			if n.Body != marker+"\ntwo" {
				t.Errorf("note body = %q", n.Body)
			}
		}
	}
	if ours != 1 {
		t.Errorf("%d bot notes, want 1", ours)
	}
}

func TestCanWrite(t *testing.T) {
	srv := gitlabtest.New(t)
	srv.Access = map[string]int{"owner": 50, "maint": 40, "dev": 30, "reporter": 20, "guest": 10}
	c := newClient(t, srv)
	want := map[string]bool{"owner": true, "maint": true, "dev": true, "reporter": false, "guest": false, "outsider": false, "ghost": false}
	for user, w := range want {
		t.Run(user, func(t *testing.T) {
			got, err := c.CanWrite(context.Background(), "group/app", user)
			if err != nil || got != w {
				t.Errorf("CanWrite(%s) = %v, %v; want %v", user, got, err, w)
			}
		})
	}
}

func TestOpenMergeRequest(t *testing.T) {
	srv := gitlabtest.New(t)
	c := newClient(t, srv)
	ctx := context.Background()
	files := map[string][]byte{"index.d/app.yaml": []byte("id: app\n")}
	url, err := c.OpenPullRequest(ctx, "group/index", "main", "cccp/onboard-app", "Onboard app", "please", files)
	if err != nil {
		t.Fatal(err)
	}
	if url != "https://gitlab.example/group/index/-/merge_requests/1" {
		t.Errorf("url = %q", url)
	}
	if got, ok := srv.File("cccp/onboard-app", "index.d/app.yaml"); !ok || got != "id: app\n" {
		t.Errorf("file = %q, %v", got, ok)
	}
	again, err := c.OpenPullRequest(ctx, "group/index", "main", "cccp/onboard-app", "Onboard app", "please", files)
	if err != nil || again != url {
		t.Errorf("retry = %q, %v; want the same MR", again, err)
	}
	pr, err := c.PullRequest(ctx, "group/index", 1)
	if err != nil || pr.HeadRef != "cccp/onboard-app" || pr.HeadSHA == "" {
		t.Errorf("PullRequest = %+v, %v", pr, err)
	}
}

func TestRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "12")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"message":"429 Too Many Requests"}`))
	}))
	defer srv.Close()
	c, _ := NewClient(Config{Token: "glpat-secret", BaseURL: srv.URL + "/api/v4/"})
	err := c.SetStatus(context.Background(), "g/a", event.Status{Name: "n", SHA: "s", State: event.StateQueued})
	var re *event.RetryableError
	if !errors.As(err, &re) || re.RetryAfter() != 12*time.Second {
		t.Fatalf("err = %v, want RetryableError after 12s", err)
	}
	if strings.Contains(err.Error(), "glpat-secret") {
		t.Errorf("token in error: %v", err)
	}
}

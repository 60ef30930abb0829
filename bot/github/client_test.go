package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/github/githubtest"
)

func newApp(t *testing.T, srv *githubtest.Server) *App {
	t.Helper()
	app, err := NewAppClient(AppConfig{AppID: 7, PrivateKeyPEM: githubtest.AppKey(t), BaseURL: srv.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func TestAppCheckRunLifecycle(t *testing.T) {
	srv := githubtest.New(t)
	app := newApp(t, srv)
	ctx := context.Background()
	st := event.Status{Name: "cccp/7/app-build", SHA: "abc123", DetailsURL: "https://cccp.example/runs/1"}
	for _, s := range []event.State{event.StateQueued, event.StateRunning, event.StateRunning, event.StateFailure} {
		st.State = s
		st.Title = "build " + string(s)
		if s == event.StateFailure {
			st.Summary = "| stage | result | time |\n| --- | --- | --- |\n| build | failure | 12s |\n"
		}
		if err := app.SetStatus(ctx, "org/app", st); err != nil {
			t.Fatalf("SetStatus(%s): %v", s, err)
		}
	}
	runs := srv.CheckRuns()
	if len(runs) != 1 {
		t.Fatalf("check runs = %+v, want exactly one", runs)
	}
	r := runs[0]
	if r.Name != st.Name || r.HeadSHA != "abc123" || r.Status != "completed" || r.Conclusion != "failure" || r.DetailsURL != st.DetailsURL {
		t.Errorf("final check run = %+v", r)
	}
	if r.Output["summary"] != st.Summary || r.Output["title"] != "build failure" {
		t.Errorf("output = %v", r.Output)
	}
	var seq []string
	for _, c := range srv.Calls() {
		if strings.Contains(c.Path, "check-runs") {
			seq = append(seq, c.Method)
			if c.Auth != "token ghs_installation42" {
				t.Errorf("%s authorised with %q, want the installation token", c, c.Auth)
			}
		}
	}
	if got := strings.Join(seq, ","); got != "GET,POST,PATCH,PATCH,PATCH" {
		t.Errorf("check-run calls = %s, want one look-up, one create, then updates", got)
	}
}

func TestCheckRunFoundAfterRestart(t *testing.T) {
	srv := githubtest.New(t)
	ctx := context.Background()
	st := event.Status{Name: "cccp/7/app-build", SHA: "abc", State: event.StateRunning}
	if err := newApp(t, srv).SetStatus(ctx, "org/app", st); err != nil {
		t.Fatal(err)
	}
	// A new process knows no IDs: it must find the run, not create another.
	st.State = event.StateSuccess
	if err := newApp(t, srv).SetStatus(ctx, "org/app", st); err != nil {
		t.Fatal(err)
	}
	runs := srv.CheckRuns()
	if len(runs) != 1 || runs[0].Conclusion != "success" {
		t.Errorf("check runs = %+v, want one, successful", runs)
	}
}

func TestTokenCommitStatuses(t *testing.T) {
	srv := githubtest.New(t)
	c, err := NewTokenClient(TokenConfig{Token: "ghp_secret", BaseURL: srv.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		state event.State
		want  string
	}{
		{event.StateQueued, "pending"}, {event.StateRunning, "pending"}, {event.StateSuccess, "success"},
		{event.StateFailure, "failure"}, {event.StateCancelled, "error"}, {event.StateError, "error"},
	}
	long := strings.Repeat("é", 200)
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			err := c.SetStatus(context.Background(), "org/app", event.Status{Name: "cccp/app/job", SHA: "s1", State: tt.state, Title: long, DetailsURL: "https://cccp.example/r"})
			if err != nil {
				t.Fatal(err)
			}
			sts := srv.Statuses()
			got := sts[len(sts)-1]
			desc, _ := got["description"].(string)
			if got["state"] != tt.want || got["context"] != "cccp/app/job" || got["target_url"] != "https://cccp.example/r" {
				t.Errorf("status = %v, want state %s", got, tt.want)
			}
			if n := len([]rune(desc)); n != 140 || !strings.HasSuffix(desc, "…") {
				t.Errorf("description has %d characters, want 140 ending in …", n)
			}
		})
	}
	for _, call := range srv.Calls() {
		if call.Auth != "Bearer ghp_secret" {
			t.Errorf("%s sent Authorization %q", call, call.Auth)
		}
	}
}

func TestUpsertComment(t *testing.T) {
	srv := githubtest.New(t)
	srv.PageSize = 2
	for i := range 5 {
		srv.AddComment(3, "someone", fmt.Sprintf("comment %d", i))
	}
	c, err := NewTokenClient(TokenConfig{Token: "t", BaseURL: srv.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const marker = "<!-- cccp:summary -->"
	id1, err := c.UpsertComment(ctx, "org/app", 3, marker, "first")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := c.UpsertComment(ctx, "org/app", 3, marker, "second")
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Errorf("ids %d and %d differ", id1, id2)
	}
	var ours []string
	for _, cm := range srv.Comments(3) {
		if strings.Contains(cm.Body, marker) {
			ours = append(ours, cm.Body)
		}
	}
	if len(ours) != 1 || ours[0] != marker+"\nsecond" {
		t.Errorf("bot comments = %q, want one holding the second body", ours)
	}
	var writes []string
	pages := 0
	for _, call := range srv.Calls() {
		switch {
		case call.Method == http.MethodGet:
			pages++
		default:
			writes = append(writes, call.Method)
		}
	}
	if got := strings.Join(writes, ","); got != "POST,PATCH" {
		t.Errorf("writes = %s, want POST then PATCH", got)
	}
	if pages < 6 { // 3 pages before the comment exists, 3 to find it at the end
		t.Errorf("listed %d pages, want every page read", pages)
	}
	big := strings.Repeat("x", CommentLimit+100)
	if _, err := c.UpsertComment(ctx, "org/app", 3, marker, big); err != nil {
		t.Fatal(err)
	}
	for _, cm := range srv.Comments(3) {
		if strings.Contains(cm.Body, marker) && len(cm.Body) > CommentLimit {
			t.Errorf("comment of %d bytes exceeds the limit", len(cm.Body))
		}
	}
}

func TestCanWrite(t *testing.T) {
	srv := githubtest.New(t)
	srv.Permissions = map[string]string{"alice": "admin", "bob": "write", "carol": "read", "dan": "none", "erin": "maintain"}
	c, _ := NewTokenClient(TokenConfig{Token: "t", BaseURL: srv.APIURL()})
	want := map[string]bool{"alice": true, "bob": true, "carol": false, "dan": false, "erin": true, "stranger": false}
	for user, w := range want {
		t.Run(user, func(t *testing.T) {
			got, err := c.CanWrite(context.Background(), "org/app", user)
			if err != nil || got != w {
				t.Errorf("CanWrite(%s) = %v, %v; want %v", user, got, err, w)
			}
		})
	}
}

func TestOpenPullRequest(t *testing.T) {
	srv := githubtest.New(t)
	c, _ := NewTokenClient(TokenConfig{Token: "t", BaseURL: srv.APIURL()})
	ctx := context.Background()
	files := map[string][]byte{"index.d/app.yaml": []byte("id: app\n"), "README.md": []byte("hi\n")}
	url, err := c.OpenPullRequest(ctx, "org/index", "main", "cccp/onboard-app", "Onboard app", "body", files)
	if err != nil {
		t.Fatal(err)
	}
	if url != "https://github.example/org/index/pull/1" {
		t.Errorf("url = %q", url)
	}
	for p, want := range files {
		if got, ok := srv.File("cccp/onboard-app", p); !ok || got != string(want) {
			t.Errorf("file %s = %q, %v", p, got, ok)
		}
	}
	pr, err := c.PullRequest(ctx, "org/index", 1)
	if err != nil || pr.HeadRef != "cccp/onboard-app" || pr.BaseRef != "main" {
		t.Errorf("PullRequest = %+v, %v", pr, err)
	}
	// A retry finds branch and files in place and still succeeds.
	files["index.d/app.yaml"] = []byte("id: app\nv: 2\n")
	if _, err := c.OpenPullRequest(ctx, "org/index", "main", "cccp/onboard-app", "Onboard app", "body", files); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got, _ := srv.File("cccp/onboard-app", "index.d/app.yaml"); got != "id: app\nv: 2\n" {
		t.Errorf("retry did not update the file: %q", got)
	}
}

func TestRateLimitIsRetryable(t *testing.T) {
	reset := time.Now().Add(90 * time.Second).Unix()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		min     time.Duration
	}{
		{name: "primary", min: 90 * time.Second, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", fmt.Sprint(reset))
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"API rate limit exceeded"}`)
		}},
		{name: "server error with Retry-After", min: 7 * time.Second, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"message":"unavailable"}`)
		}},
		{name: "secondary beyond the sleep cap", min: 2 * time.Minute, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, _ := NewTokenClient(TokenConfig{Token: "ghp_topsecret", BaseURL: srv.URL + "/api/v3/"})
			err := c.SetStatus(context.Background(), "org/app", event.Status{Name: "n", SHA: "s", State: event.StateQueued})
			var re interface{ RetryAfter() time.Duration }
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RetryAfter error", err)
			}
			if re.RetryAfter() < tt.min-5*time.Second || re.RetryAfter() > tt.min+5*time.Second {
				t.Errorf("RetryAfter = %s, want about %s", re.RetryAfter(), tt.min)
			}
			if strings.Contains(err.Error(), "ghp_topsecret") {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestClientConfigErrors(t *testing.T) {
	if _, err := NewTokenClient(TokenConfig{}); err == nil {
		t.Error("token client without token accepted")
	}
	if _, err := NewAppClient(AppConfig{AppID: 1, PrivateKeyPEM: []byte("nope")}); err == nil {
		t.Error("app with a bad key accepted")
	}
	if _, err := NewTokenClient(TokenConfig{Token: "t", BaseURL: "ghe.example.com"}); err == nil {
		t.Error("base URL without scheme accepted")
	}
}

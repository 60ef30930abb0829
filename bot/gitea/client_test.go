package gitea

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/gitea/giteatest"
)

func newClient(t *testing.T, srv *giteatest.Server) *Client {
	t.Helper()
	c, err := NewClient(Config{Token: "gitea-secret", BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSetStatus(t *testing.T) {
	srv := giteatest.New(t)
	c := newClient(t, srv)
	want := map[event.State]string{
		event.StateQueued: "pending", event.StateRunning: "pending", event.StateSuccess: "success",
		event.StateFailure: "failure", event.StateCancelled: "error", event.StateError: "error",
	}
	for s, w := range want {
		t.Run(string(s), func(t *testing.T) {
			err := c.SetStatus(context.Background(), "org/app", event.Status{Name: "cccp/app/job", SHA: "abc", State: s, Title: "t", DetailsURL: "https://cccp.example/r"})
			if err != nil {
				t.Fatal(err)
			}
			sts := srv.Statuses()
			got := sts[len(sts)-1]
			if got.State != w || got.Context != "cccp/app/job" || got.SHA != "abc" || got.TargetURL != "https://cccp.example/r" {
				t.Errorf("status = %+v, want state %s", got, w)
			}
		})
	}
	for _, call := range srv.Calls() {
		if call.Path == "/api/v1/version" {
			t.Errorf("client probed the server version")
		}
		if call.Auth != "token gitea-secret" {
			t.Errorf("%s sent Authorization %q", call, call.Auth)
		}
	}
}

func TestUpsertComment(t *testing.T) {
	srv := giteatest.New(t)
	srv.PageSize = 2
	for range 5 {
		srv.AddComment(2, "someone", "+1")
	}
	c := newClient(t, srv)
	ctx := context.Background()
	const marker = "<!-- cccp:summary -->"
	id1, err := c.UpsertComment(ctx, "org/app", 2, marker, "first")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := c.UpsertComment(ctx, "org/app", 2, marker, "second")
	if err != nil || id2 != id1 {
		t.Fatalf("second upsert = %d, %v; want %d", id2, err, id1)
	}
	var writes []string
	pages := 0
	for _, call := range srv.Calls() {
		if call.Method != http.MethodGet {
			writes = append(writes, call.Method)
		} else {
			pages++
		}
	}
	if strings.Join(writes, ",") != "POST,PATCH" {
		t.Errorf("writes = %v, want POST then PATCH", writes)
	}
	if pages < 6 { // 5 foreign comments in pages of 2: 3 pages per look-up
		t.Errorf("read %d pages, want every page", pages)
	}
	n := 0
	for _, cm := range srv.Comments(2) {
		if strings.Contains(cm.Body, marker) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d bot comments, want 1", n)
	}
}

func TestCanWrite(t *testing.T) {
	srv := giteatest.New(t)
	srv.Permissions = map[string]string{"o": "owner", "a": "admin", "w": "write", "r": "read", "n": "none"}
	c := newClient(t, srv)
	want := map[string]bool{"o": true, "a": true, "w": true, "r": false, "n": false, "stranger": false}
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
	srv := giteatest.New(t)
	c := newClient(t, srv)
	ctx := context.Background()
	files := map[string][]byte{"a.yaml": []byte("a\n"), "b.yaml": []byte("b\n")}
	url, err := c.OpenPullRequest(ctx, "org/index", "main", "cccp/onboard", "Onboard", "body", files)
	if err != nil {
		t.Fatal(err)
	}
	if url != "https://gitea.example/org/index/pulls/1" {
		t.Errorf("url = %q", url)
	}
	for p, want := range files {
		if got, ok := srv.File("cccp/onboard", p); !ok || got != string(want) {
			t.Errorf("%s = %q, %v", p, got, ok)
		}
	}
	again, err := c.OpenPullRequest(ctx, "org/index", "main", "cccp/onboard", "Onboard", "body", files)
	if err != nil || again != url {
		t.Errorf("retry = %q, %v; want the same pull request", again, err)
	}
	pr, err := c.PullRequest(ctx, "org/index", 1)
	if err != nil || pr.HeadRef != "cccp/onboard" || pr.HeadSHA != "feedface" || pr.Fork {
		t.Errorf("PullRequest = %+v, %v", pr, err)
	}
}

func TestRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "9")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"maintenance"}`))
	}))
	defer srv.Close()
	c, _ := NewClient(Config{Token: "gitea-secret", BaseURL: srv.URL})
	err := c.SetStatus(context.Background(), "o/a", event.Status{Name: "n", SHA: "s", State: event.StateQueued})
	var re *event.RetryableError
	if !errors.As(err, &re) || re.RetryAfter() != 9*time.Second {
		t.Fatalf("err = %v, want RetryableError after 9s", err)
	}
	if strings.Contains(err.Error(), "gitea-secret") {
		t.Errorf("token in error: %v", err)
	}
}

package github

import (
	"context"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/github/githubtest"
)

// TestUpsertCommentOnlyOwn: a comment by someone else holding the bot's
// marker is neither edited nor taken for the bot's, for an App (its login
// is slug + "[bot]", from GET /app) and a token (GET /user).
func TestUpsertCommentOnlyOwn(t *testing.T) {
	const marker = "<!-- cccp:pr -->"
	clients := map[string]func(t *testing.T, srv *githubtest.Server) commenter{
		"app": func(t *testing.T, srv *githubtest.Server) commenter { return newApp(t, srv) },
		"token": func(t *testing.T, srv *githubtest.Server) commenter {
			c, err := NewTokenClient(TokenConfig{Token: "ghp-secret", BaseURL: srv.APIURL()})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	for name, mk := range clients {
		t.Run(name, func(t *testing.T) {
			srv := githubtest.New(t)
			srv.AddComment(1, "mallory", marker+"\nall pipelines passed")
			c := mk(t, srv)
			ctx := context.Background()
			for _, body := range []string{"one", "two"} {
				if _, err := c.UpsertComment(ctx, "Codertocat/Hello-World", 1, marker, body); err != nil {
					t.Fatal(err)
				}
			}
			cs := srv.Comments(1)
			if len(cs) != 2 || cs[0].Body != marker+"\nall pipelines passed" {
				t.Fatalf("comments = %+v, want mallory's untouched and one of the bot's", cs)
			}
			if cs[1].User.Login != "cccp[bot]" || !strings.HasSuffix(cs[1].Body, "two") {
				t.Errorf("bot comment = %+v, want cccp[bot]'s, edited to two", cs[1])
			}
		})
	}
}

type commenter interface {
	UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error)
}

package gitea

import (
	"context"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/gitea/giteatest"
)

// TestUpsertCommentOnlyOwn: a comment by someone else holding the bot's
// marker is neither edited nor taken for the bot's (GET /user names it).
func TestUpsertCommentOnlyOwn(t *testing.T) {
	const marker = "<!-- cccp:pr -->"
	srv := giteatest.New(t)
	srv.AddComment(1, "mallory", marker+"\nall pipelines passed")
	c := newClient(t, srv)
	ctx := context.Background()
	for _, body := range []string{"one", "two"} {
		if _, err := c.UpsertComment(ctx, "gitea/webhooks", 1, marker, body); err != nil {
			t.Fatal(err)
		}
	}
	cs := srv.Comments(1)
	if len(cs) != 2 || cs[0].Body != marker+"\nall pipelines passed" {
		t.Fatalf("comments = %+v, want mallory's untouched and one of the bot's", cs)
	}
	if cs[1].User.Login != "cccp-bot" || !strings.HasSuffix(cs[1].Body, "two") {
		t.Errorf("bot comment = %+v, want cccp-bot's, edited to two", cs[1])
	}
}

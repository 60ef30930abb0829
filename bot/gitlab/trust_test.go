package gitlab

import (
	"context"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/gitlab/gitlabtest"
)

// TestPullRequestOfFork: a fork merge request looked up through the API
// (for /ok-to-test, /retest) is fetched from the fork, not from the target
// project at the fork's SHA.
func TestPullRequestOfFork(t *testing.T) {
	srv := gitlabtest.New(t)
	srv.Projects[14] = "awesome_space/awesome_project"
	srv.Projects[77] = "outsider/awesome_project"
	fork := srv.AddMergeRequest(map[string]any{"title": "MR Title", "sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		"source_branch": "ms-viewport", "target_branch": "master", "source_project_id": 77, "target_project_id": 14,
		"state": "opened", "author": map[string]any{"id": 51, "username": "outsider"}})
	same := srv.AddMergeRequest(map[string]any{"sha": "5ca1ab1e", "source_branch": "fix", "target_branch": "master",
		"source_project_id": 14, "target_project_id": 14, "state": "opened", "author": map[string]any{"id": 1, "username": "user1"}})
	c := newClient(t, srv)
	ctx := context.Background()
	pr, err := c.PullRequest(ctx, "awesome_space/awesome_project", fork)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Fork || pr.HeadCloneURL != "https://gitlab.example/outsider/awesome_project.git" || pr.Author != "outsider" || pr.AuthorID != 51 {
		t.Errorf("fork MR = %+v, want fork from outsider/awesome_project by outsider", pr)
	}
	pr, err = c.PullRequest(ctx, "awesome_space/awesome_project", same)
	if err != nil || pr.Fork || pr.HeadCloneURL != "" {
		t.Errorf("same-project MR = %+v, %v; want no fork and the entry's own URL", pr, err)
	}
}

// TestUpsertNoteOnlyOwn: a note by someone else holding the bot's marker
// is neither edited nor taken for the bot's, and it blocks nothing.
func TestUpsertNoteOnlyOwn(t *testing.T) {
	srv := gitlabtest.New(t)
	const marker = "<!-- cccp:pr -->"
	srv.AddNote(4, "mallory", marker+"\nall pipelines passed", false)
	c := newClient(t, srv)
	ctx := context.Background()
	for _, body := range []string{"one", "two"} {
		if _, err := c.UpsertComment(ctx, "group/app", 4, marker, body); err != nil {
			t.Fatal(err)
		}
	}
	notes := srv.Notes(4)
	if len(notes) != 2 || notes[0].Body != marker+"\nall pipelines passed" {
		t.Fatalf("notes = %+v, want mallory's untouched and one of the bot's", notes)
	}
	if notes[1].Author.Username != "cccp-bot" || !strings.HasSuffix(notes[1].Body, "two") {
		t.Errorf("bot note = %+v, want cccp-bot's, edited to two", notes[1])
	}
	users := 0
	for _, call := range srv.Calls() {
		if call.Path == "/api/v4/user" {
			users++
		}
	}
	if users != 1 {
		t.Errorf("%d look-ups of the token's user, want 1 (cached)", users)
	}
}

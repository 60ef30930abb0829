package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/bot/route"
	"github.com/cccp-project/cccp/internal/store"
)

// Meta namespaces of the trust rules' state.
const (
	nsCommand = "bot-command" // forge:repo:comment ID -> the delivery that acted on it
	nsRefused = "bot-refused" // prKey + "@" + user -> a refusal was posted
)

// The API-quota guards: permission answers are reused for permTTL (at most
// permMax of them); replies on one forge are at most replyBurst at once,
// refilled at one per replyEvery.
const (
	permTTL    = 60 * time.Second
	permMax    = 4096
	replyBurst = 20
	replyEvery = 3 * time.Second
)

// trustState is the in-memory part of the trust rules: a short permission
// cache and the reply rate limit. The zero value is ready.
type trustState struct {
	mu      sync.Mutex
	perms   map[string]permAnswer
	replies map[string]*bucket // by forge
}

type permAnswer struct {
	can     bool
	expires time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// canWrite asks the forge whether user may write to repo, reusing an
// answer younger than permTTL: every command-looking comment from a
// stranger would otherwise cost a look-up.
func (b *Bot) canWrite(ctx context.Context, forge, repo, user string) (bool, error) {
	c := b.client(forge)
	if c == nil {
		return false, fmt.Errorf("forge %s not configured", forge)
	}
	key := forge + "\x00" + strings.ToLower(repo) + "\x00" + user
	now := b.cfg.Now()
	t := &b.trust
	t.mu.Lock()
	a, ok := t.perms[key]
	t.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.can, nil
	}
	can, err := c.CanWrite(ctx, repo, user)
	if err != nil {
		return false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perms == nil {
		t.perms = map[string]permAnswer{}
	}
	if len(t.perms) >= permMax {
		for k, v := range t.perms {
			if !now.Before(v.expires) {
				delete(t.perms, k)
			}
		}
		if len(t.perms) >= permMax {
			clear(t.perms)
		}
	}
	t.perms[key] = permAnswer{can: can, expires: now.Add(permTTL)}
	return can, nil
}

// allowReply takes one reply from forge's bucket.
func (t *trustState) allowReply(forge string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.replies == nil {
		t.replies = map[string]*bucket{}
	}
	bk := t.replies[forge]
	if bk == nil {
		bk = &bucket{tokens: replyBurst, last: now}
		t.replies[forge] = bk
	}
	if d := now.Sub(bk.last); d > 0 {
		bk.tokens = min(replyBurst, bk.tokens+float64(d)/float64(replyEvery))
		bk.last = now
	}
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

// refuse answers a command someone without write access used, once per
// person and pull request: a stranger repeating commands costs one reply.
func (b *Bot) refuse(ctx context.Context, ev *event.Event, who, body string) error {
	key := prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number) + "@" + who
	if _, err := b.cfg.Store.GetMeta(ctx, nsRefused, key); err == nil {
		b.log.Info("command of a non-writer ignored: already answered", "user", who, "pr", key)
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := b.reply(ctx, ev, body); err != nil {
		return err
	}
	return b.cfg.Store.PutMeta(ctx, nsRefused, key, []byte(ev.DeliveryID))
}

// commandOnce acts on a comment's command once per forge, repository and
// comment: a signed comment body replayed under a new delivery ID does
// nothing. A delivery that failed half-way is retried under its own ID
// (its effects are idempotent) and is not refused here.
func (b *Bot) commandOnce(ctx context.Context, ev *event.Event) error {
	if ev.Comment == nil || ev.PR == nil || ev.Comment.ID == 0 {
		return b.comment(ctx, ev)
	}
	key := ev.Forge + ":" + strings.ToLower(ev.Repo.FullName) + ":" + strconv.FormatInt(ev.Comment.ID, 10)
	unlock := b.prs.lock("command " + key)
	defer unlock()
	switch done, err := b.cfg.Store.GetMeta(ctx, nsCommand, key); {
	case err == nil && string(done) != ev.DeliveryID:
		b.log.Info("comment already acted on", "comment", key, "delivery", ev.DeliveryID, "first", string(done))
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	if err := b.comment(ctx, ev); err != nil {
		return err
	}
	return b.cfg.Store.PutMeta(ctx, nsCommand, key, []byte(ev.DeliveryID))
}

// prAuthor fills in the pull request's author when the event does not name
// it (GitLab's payloads give only its ID; the event's user is whoever
// triggered the hook, not whose code runs).
func (b *Bot) prAuthor(ctx context.Context, ev *event.Event) error {
	if ev.PR.Author != "" {
		return nil
	}
	c := b.client(ev.Forge)
	if c == nil {
		return fmt.Errorf("forge %s not configured", ev.Forge)
	}
	pr, err := c.PullRequest(ctx, ev.Repo.FullName, ev.PR.Number)
	if err != nil {
		return fmt.Errorf("look up the author of %s#%d: %w", ev.Repo.FullName, ev.PR.Number, err)
	}
	ev.PR.Author = pr.Author
	if ev.PR.HeadCloneURL == "" && pr.Fork {
		ev.PR.HeadCloneURL, ev.PR.Fork = pr.HeadCloneURL, true
	}
	return nil
}

// approvedSHA is the commit an /ok-to-test approves: the one it names, else
// the head the comment was written on (GitLab and Gitea send it with the
// comment), else the head cccp announced as waiting, unless that head came
// after the comment was written. Never the head the API
// returns later: a push after the comment is not what was reviewed. ""
// when none is known.
func (b *Bot) approvedSHA(ctx context.Context, ev *event.Event, named, commentHead string) (string, error) {
	if named != "" {
		return named, nil
	}
	if commentHead != "" {
		return commentHead, nil
	}
	rec, err := b.loadPR(ctx, prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number))
	if err != nil || rec == nil {
		return "", err
	}
	if ev.Comment != nil && !ev.Comment.Created.IsZero() && rec.HeadAt.After(ev.Comment.Created) {
		// The head moved after the comment was written (its event was
		// worked first): the comment did not approve it.
		return "", nil
	}
	return rec.HeadSHA, nil
}

// approve stores the approval of sha and starts the pipelines when sha is
// still the head; otherwise it says so and runs nothing.
func (b *Bot) approve(ctx context.Context, ev *event.Event, sha string) error {
	if sha == "" {
		return b.reply(ctx, ev, "cccp cannot tell which commit this approves. Comment `/ok-to-test "+
			ev.PR.HeadSHA+"` after reviewing that commit.")
	}
	key := prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number)
	prev, err := b.cfg.Store.GetMeta(ctx, nsOkToTest, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := b.cfg.Store.PutMeta(ctx, nsOkToTest, key, route.AddApproval(prev, sha)); err != nil {
		return fmt.Errorf("store approval of %s: %w", key, err)
	}
	if !strings.EqualFold(sha, ev.PR.HeadSHA) {
		return b.reply(ctx, ev, fmt.Sprintf("Approved `%s`, but the head is now `%s`: nothing runs for it. "+
			"Review it and comment `/ok-to-test %s`.", report.Short(sha), report.Short(ev.PR.HeadSHA), ev.PR.HeadSHA))
	}
	return b.pullRequest(ctx, ev, nil)
}

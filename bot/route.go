package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cccp-project/cccp/bot/commands"
	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/report"
	"github.com/cccp-project/cccp/bot/route"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Meta namespaces of the bot's state in the store.
const (
	nsPR       = "bot-pr"         // prKey -> prRecord JSON
	nsOkToTest = "bot-ok-to-test" // prKey -> approved head SHA
)

// route acts on one parsed event.
func (b *Bot) route(ctx context.Context, ev *event.Event) error {
	switch ev.Kind {
	case event.KindPush:
		if b.isIndexRepo(ev) {
			return b.indexPush(ctx, ev)
		}
		for _, req := range route.PushRequests(ev, b.cfg.Entries()) {
			if _, err := b.enqueue(ctx, req); err != nil {
				return err
			}
		}
		return nil
	case event.KindPullRequest:
		if ev.PR == nil {
			return fmt.Errorf("pull request event without a pull request: %w", errBadEvent)
		}
		return b.pullRequest(ctx, ev, nil)
	case event.KindComment:
		return b.commandOnce(ctx, ev)
	case event.KindCheckRerun:
		return b.checkRerun(ctx, ev)
	}
	return nil // ping, ignored
}

// ---- exactly-once run creation

// enqueue creates the run req asks for unless the same delivery already
// created it (a delivery processed again after a crash, or redelivered):
// the pipeline returns that run then, in whatever state, from the
// delivery's link stored with the run (store.DB.DeliveryRun), looked up
// once, under its per-target lock.
func (b *Bot) enqueue(ctx context.Context, req pipeline.Request) (*store.Run, error) {
	r, err := b.cfg.Pipeline.Enqueue(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("queue %s run of %s: %w", req.Kind, req.Project, err)
	}
	b.log.Info("request routed to run", "run", r.ID, "project", r.Project, "kind", r.Kind, "delivery", req.Cause.DeliveryID)
	return r, nil
}

// ---- pull requests

// prRecord is the bot's memory of one pull request.
type prRecord struct {
	Forge   string       `json:"forge"`
	Repo    string       `json:"repo"`
	Number  int          `json:"number"`
	HeadSHA string       `json:"head_sha"`
	Index   bool         `json:"index,omitempty"` // a pull request on the index repository
	Runs    []string     `json:"runs,omitempty"`  // runs of HeadSHA, oldest first
	Waiting bool         `json:"waiting,omitempty"`
	Author  string       `json:"author,omitempty"`
	Lint    *indexResult `json:"lint,omitempty"`
	// HeadAt is when the forge changed the pull request as it moved to
	// HeadSHA (zero when the event did not say): an /ok-to-test written
	// before it did not see HeadSHA.
	HeadAt time.Time `json:"head_at,omitzero"`
	// WaitingFor are the projects (entry keys) a waiting pull request
	// would run, each shown as a pending status.
	WaitingFor []string  `json:"waiting_for,omitempty"`
	Updated    time.Time `json:"updated,omitzero"` // last change; idle records are pruned
	BaseRef    string    `json:"base_ref,omitempty"`
	Draft      bool      `json:"draft,omitempty"`  // a draft: runs wait until it is ready
	Closed     bool      `json:"closed,omitempty"` // closed or merged
}

// indexResult is the stored outcome of an index pull request's lint.
type indexResult struct {
	Error     string      `json:"error,omitempty"` // the check itself failed
	Structure []string    `json:"structure,omitempty"`
	StructErr bool        `json:"struct_err,omitempty"`
	Entries   []entryLint `json:"entries,omitempty"`
	Removed   []string    `json:"removed,omitempty"`
}

type entryLint struct {
	// Key is the entry's key (app-id/job-id:desired-tag), the project of
	// its trial run. Stored under "name" since before keys.
	Key      string   `json:"name"`
	Findings []string `json:"findings,omitempty"`
	Failed   bool     `json:"failed,omitempty"` // has error findings: no trial build
}

func prKey(forge, repo string, n int) string { return forge + ":" + repo + "#" + strconv.Itoa(n) }

func (b *Bot) loadPR(ctx context.Context, key string) (*prRecord, error) {
	v, err := b.cfg.Store.GetMeta(ctx, nsPR, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec := new(prRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("decode pull request record %s: %w", key, err)
	}
	return rec, nil
}

// updatePR reads, changes and writes a pull request's record, serialised
// per pull request, then puts its refreshed comment in the outbox.
func (b *Bot) updatePR(ctx context.Context, ev *event.Event, fn func(*prRecord) error) (*prRecord, error) {
	key := prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number)
	unlock := b.prs.lock(key)
	defer unlock()
	rec, err := b.loadPR(ctx, key)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		rec = &prRecord{Forge: ev.Forge, Repo: ev.Repo.FullName, Number: ev.PR.Number}
	}
	if err := fn(rec); err != nil {
		return nil, err
	}
	rec.Updated = b.cfg.Now().UTC()
	v, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := b.cfg.Store.PutMeta(ctx, nsPR, key, v); err != nil {
		return nil, fmt.Errorf("store pull request record %s: %w", key, err)
	}
	// Before the delivery is finished: a crash in between routes it again.
	if err := b.reportPR(ctx, key); err != nil {
		return nil, fmt.Errorf("report pull request %s: %w", key, err)
	}
	return rec, nil
}

// pullRequest starts the pipelines of a pull request's head commit, if its
// author is trusted or a writer approved that commit. only, when set,
// limits the runs to those projects, by entry key (/retest).
func (b *Bot) pullRequest(ctx context.Context, ev *event.Event, only map[string]bool) error {
	isIndex := b.isIndexRepo(ev)
	if stop, err := b.prLifecycle(ctx, ev); stop || err != nil {
		return err
	}
	if !isIndex && len(route.PRRequests(ev, b.cfg.Entries())) == 0 {
		// No entry builds this repository's base branch: stay silent
		// (an App installed on a whole organisation sees every PR).
		return nil
	}
	ok, err := b.trusted(ctx, ev)
	if err != nil {
		return err
	}
	if !ok {
		_, err := b.updatePR(ctx, ev, func(rec *prRecord) error {
			if rec.HeadSHA != ev.PR.HeadSHA {
				rec.Runs, rec.Lint, rec.HeadAt = nil, nil, ev.PR.Updated
			}
			rec.HeadSHA, rec.Index, rec.Waiting, rec.Author = ev.PR.HeadSHA, isIndex, true, ev.PR.Author
			rec.WaitingFor = nil
			for _, req := range route.PRRequests(ev, b.cfg.Entries()) {
				rec.WaitingFor = append(rec.WaitingFor, req.Project)
			}
			return nil
		})
		return err
	}
	var reqs []pipeline.Request
	var lint *indexResult
	if isIndex {
		reqs, lint = b.indexPR(ctx, ev)
	} else {
		reqs = route.PRRequests(ev, b.cfg.Entries())
	}
	if only != nil {
		reqs = slices.DeleteFunc(reqs, func(r pipeline.Request) bool { return !only[r.Project] })
	}
	var ids []string
	for _, req := range reqs {
		r, err := b.enqueue(ctx, req)
		if err != nil {
			return err
		}
		ids = append(ids, r.ID)
	}
	_, err = b.updatePR(ctx, ev, func(rec *prRecord) error {
		if rec.HeadSHA != ev.PR.HeadSHA {
			rec.Runs, rec.Lint, rec.HeadAt = nil, nil, ev.PR.Updated
		}
		rec.HeadSHA, rec.Index, rec.Waiting, rec.Author = ev.PR.HeadSHA, isIndex, false, ev.PR.Author
		rec.WaitingFor = nil
		rec.BaseRef, rec.Draft, rec.Closed = ev.PR.BaseRef, false, false
		for _, id := range ids {
			if !slices.Contains(rec.Runs, id) {
				rec.Runs = append(rec.Runs, id)
			}
		}
		if lint != nil {
			rec.Lint = lint
		}
		return nil
	})
	return err
}

// prLifecycle acts on what is not a new head: a closed or merged pull
// request gets its unfinished runs cancelled; a draft (unless drafts are
// built) waits until it is ready, its unfinished runs cancelled; a new
// base branch cancels the runs for the old one before the pull request is
// evaluated again. stop says nothing more is to be done for ev.
func (b *Bot) prLifecycle(ctx context.Context, ev *event.Event) (stop bool, err error) {
	pr := ev.PR
	rec, err := b.loadPR(ctx, prKey(ev.Forge, ev.Repo.FullName, pr.Number))
	if err != nil {
		return true, err
	}
	draft := pr.Draft && !b.cfg.BuildDrafts
	var reason string
	switch {
	case pr.Closed:
		reason = "the pull request was closed"
	case draft:
		reason = "the pull request became a draft"
	case rec != nil && rec.BaseRef != "" && rec.BaseRef != pr.BaseRef:
		reason = "the pull request's base changed from " + rec.BaseRef + " to " + pr.BaseRef
	}
	if rec != nil && reason != "" {
		if err := b.cancelRuns(ctx, rec.Runs, reason); err != nil {
			return true, err
		}
	}
	if !pr.Closed && !draft {
		return false, nil
	}
	if rec == nil && pr.Closed {
		return true, nil // nothing was ever done for it
	}
	if rec == nil && len(route.PRRequests(ev, b.cfg.Entries())) == 0 && !b.isIndexRepo(ev) {
		return true, nil // silent, as for any pull request cccp does not build
	}
	_, err = b.updatePR(ctx, ev, func(rec *prRecord) error {
		rec.Closed, rec.Draft = pr.Closed, draft
		if pr.HeadSHA != "" && rec.HeadSHA != pr.HeadSHA {
			rec.Runs, rec.Lint, rec.HeadSHA = nil, nil, pr.HeadSHA
		}
		rec.BaseRef = pr.BaseRef
		return nil
	})
	return true, err
}

// cancelRuns cancels the unfinished runs of ids.
func (b *Bot) cancelRuns(ctx context.Context, ids []string, reason string) error {
	for _, id := range ids {
		r, err := b.cfg.Store.Run(ctx, id)
		if err != nil || r.State.Done() {
			continue
		}
		if err := b.cfg.Pipeline.Cancel(ctx, id, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("cancel run %s: %w", id, err)
		}
	}
	return nil
}

// trusted: the author may write to the repository, or a writer approved
// this head commit with /ok-to-test.
func (b *Bot) trusted(ctx context.Context, ev *event.Event) (bool, error) {
	if err := b.prAuthor(ctx, ev); err != nil {
		return false, err
	}
	author := ev.PR.Author
	if author != "" {
		ok, err := b.canWrite(ctx, ev.Forge, ev.Repo.FullName, author)
		if err != nil {
			return false, fmt.Errorf("permission of %s on %s: %w", author, ev.Repo.FullName, err)
		}
		if ok {
			return true, nil
		}
	}
	v, err := b.cfg.Store.GetMeta(ctx, nsOkToTest, prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return route.Approved(v, ev.PR.HeadSHA), nil
}

// ---- the index repository

func (b *Bot) isIndexRepo(ev *event.Event) bool {
	ix := b.cfg.Index
	return ix.FullName != "" && ev.Forge == ix.Forge && strings.EqualFold(ev.Repo.FullName, ix.FullName)
}

// indexPush reloads the index on a push to its default branch and queues
// the first build of each new entry.
func (b *Bot) indexPush(ctx context.Context, ev *event.Event) error {
	if ev.Deleted || ev.Branch == "" || ev.Branch != ev.Repo.DefaultBranch || b.cfg.ReloadIndex == nil {
		return nil
	}
	added, err := b.cfg.ReloadIndex(ctx, ev)
	if err != nil {
		return fmt.Errorf("reload index: %w", err)
	}
	for _, key := range added {
		req := pipeline.Request{Project: key, Kind: types.KindBranch,
			Cause: store.Cause{Kind: "index", Commit: ev.After, Ref: ev.Ref, Actor: ev.Sender,
				Forge: ev.Forge, Repo: ev.Repo.FullName, DeliveryID: ev.DeliveryID, Detail: "new index entry"}}
		if _, err := b.enqueue(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

// indexPR lints an index pull request and returns a trial run for each new
// or changed entry without lint errors.
func (b *Bot) indexPR(ctx context.Context, ev *event.Event) ([]pipeline.Request, *indexResult) {
	chk, err := b.cfg.IndexPR.Check(ctx, ev)
	if err != nil {
		b.log.Error("check index pull request", "repo", ev.Repo.FullName, "pr", ev.PR.Number, "err", err)
		return nil, &indexResult{Error: b.cfg.Masker.String(err.Error())}
	}
	res := &indexResult{Removed: chk.Removed, StructErr: index.HasErrors(chk.Structure)}
	for _, f := range chk.Structure {
		res.Structure = append(res.Structure, f.String())
	}
	var reqs []pipeline.Request
	for _, c := range chk.Changed {
		el := entryLint{Key: c.Entry.Key(), Failed: index.HasErrors(c.Findings)}
		for _, f := range c.Findings {
			el.Findings = append(el.Findings, f.String())
		}
		res.Entries = append(res.Entries, el)
		if el.Failed {
			continue
		}
		reqs = append(reqs, pipeline.Request{
			Project: c.Entry.Key(), Kind: types.KindTrial, Entry: c.Entry,
			Cause: store.Cause{Kind: "index", Commit: ev.PR.HeadSHA, Ref: ev.PR.HeadRef, PR: ev.PR.Number,
				Actor: ev.Sender, Forge: ev.Forge, Repo: ev.Repo.FullName, DeliveryID: ev.DeliveryID},
		})
	}
	return b.pinTrials(ctx, ev, reqs, res), res
}

// ---- comments

func replyMarker(commentID int64) string {
	return fmt.Sprintf("<!-- cccp:reply:%d -->", commentID)
}

// reply answers a comment; keyed by the comment, so answering twice edits.
func (b *Bot) reply(ctx context.Context, ev *event.Event, body string) error {
	if !b.trust.allowReply(ev.Forge, b.cfg.Now()) {
		b.log.Warn("reply dropped: too many replies", "forge", ev.Forge, "repo", ev.Repo.FullName, "pr", ev.PR.Number)
		return nil
	}
	c := b.client(ev.Forge)
	marker := replyMarker(ev.Comment.ID)
	body = marker + "\n" + body
	if _, err := c.UpsertComment(ctx, ev.Repo.FullName, ev.PR.Number, marker, body); err != nil {
		return fmt.Errorf("reply on %s#%d: %w", ev.Repo.FullName, ev.PR.Number, err)
	}
	return nil
}

// comment acts on a pull-request comment's command.
func (b *Bot) comment(ctx context.Context, ev *event.Event) error {
	if ev.Comment == nil || ev.PR == nil {
		return nil
	}
	if strings.Contains(ev.Comment.Body, "<!-- cccp:") {
		return nil // one of cccp's own comments
	}
	res := commands.Parse(ev.Comment.Body)
	if res.Ignore {
		return nil
	}
	c := b.client(ev.Forge)
	who := ev.Comment.Author
	if who == "" {
		who = ev.Sender
	}
	can, err := b.canWrite(ctx, ev.Forge, ev.Repo.FullName, who)
	if err != nil {
		return fmt.Errorf("permission of %s on %s: %w", who, ev.Repo.FullName, err)
	}
	switch {
	case res.Reply != "" && can:
		return b.reply(ctx, ev, res.Reply)
	case res.Reply != "":
		return b.refuse(ctx, ev, who, res.Reply)
	case !can:
		return b.refuse(ctx, ev, who, b.tmpl.Render("refusal", map[string]any{"Who": who, "Command": res.Command}))
	}
	commentHead := ev.PR.HeadSHA // the head the comment was written on, when the forge says
	pr, err := c.PullRequest(ctx, ev.Repo.FullName, ev.PR.Number)
	if err != nil {
		return fmt.Errorf("look up %s#%d: %w", ev.Repo.FullName, ev.PR.Number, err)
	}
	if pr.Author == "" {
		pr.Author = ev.PR.Author
	}
	ev.PR = pr
	switch res.Command {
	case commands.OkToTest:
		sha, err := b.approvedSHA(ctx, ev, res.SHA, commentHead)
		if err != nil {
			return err
		}
		return b.approve(ctx, ev, sha)
	case commands.Retest, commands.RetestAll:
		return b.retest(ctx, ev, res.Command == commands.RetestAll, "")
	case commands.Cancel:
		return b.cancel(ctx, ev, who)
	}
	return nil
}

// retest re-runs the failed pipelines of the pull request's head commit
// (all of them with all; only project's when set, an entry key: one
// desired-tag of a name, not every entry of that name). With nothing recorded
// for the head commit, the pull request's pipelines are started afresh.
func (b *Bot) retest(ctx context.Context, ev *event.Event, all bool, project string) error {
	key := prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number)
	rec, err := b.loadPR(ctx, key)
	if err != nil {
		return err
	}
	var runs []*store.Run
	if rec != nil && rec.HeadSHA == ev.PR.HeadSHA {
		for _, id := range rec.Runs {
			if r, err := b.cfg.Store.Run(ctx, id); err == nil {
				runs = append(runs, r)
			}
		}
	}
	latest := newestRuns(runs) // project key -> newest run of the head commit
	only := map[string]bool{}
	for key, r := range latest {
		if project != "" && key != project {
			continue
		}
		if all || project != "" || r.State == store.Failed || r.State == store.Cancelled {
			only[key] = true
		}
	}
	if len(latest) == 0 && (all || project != "") {
		if project != "" {
			only[project] = true
		} else {
			only = nil // everything
		}
	} else if len(only) == 0 {
		if ev.Comment != nil {
			return b.reply(ctx, ev, "Nothing to retest: no pipeline of `"+report.Short(ev.PR.HeadSHA)+"` failed. Use `/retest all` to run them all again.")
		}
		return nil
	}
	return b.pullRequest(ctx, ev, only)
}

// cancel cancels the unfinished pipelines of the pull request.
func (b *Bot) cancel(ctx context.Context, ev *event.Event, who string) error {
	rec, err := b.loadPR(ctx, prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number))
	if err != nil || rec == nil {
		return err
	}
	for _, id := range rec.Runs {
		r, err := b.cfg.Store.Run(ctx, id)
		if err != nil || r.State.Done() {
			continue
		}
		if err := b.cfg.Pipeline.Cancel(ctx, id, "cancelled by @"+who); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("cancel run %s: %w", id, err)
		}
	}
	return nil
}

// checkRerun: GitHub's "Re-run" on a cccp check is /retest for that check,
// which names one entry key (checkName); a re-run of the whole suite has
// no check name.
func (b *Bot) checkRerun(ctx context.Context, ev *event.Event) error {
	project, ours := checkProject(ev.CheckName)
	if ev.CheckName != "" && !ours {
		return nil // another app's check
	}
	c := b.client(ev.Forge)
	can, err := b.canWrite(ctx, ev.Forge, ev.Repo.FullName, ev.Sender)
	if err != nil {
		return fmt.Errorf("permission of %s on %s: %w", ev.Sender, ev.Repo.FullName, err)
	}
	if !can {
		b.log.Info("check re-run by a non-writer ignored", "user", ev.Sender, "check", ev.CheckName)
		return nil
	}
	if ev.PR != nil && ev.PR.Number != 0 {
		pr, err := c.PullRequest(ctx, ev.Repo.FullName, ev.PR.Number)
		if err != nil {
			return fmt.Errorf("look up %s#%d: %w", ev.Repo.FullName, ev.PR.Number, err)
		}
		ev.PR = pr
		if project == indexCheck {
			project = ""
		}
		return b.retest(ctx, ev, false, project)
	}
	if project == "" {
		return nil
	}
	// A branch run: run the newest run of that commit again.
	runs, err := b.cfg.Store.Runs(ctx, store.RunFilter{Project: project, Limit: 100})
	if err != nil && len(runs) == 0 {
		return err
	}
	for _, r := range runs {
		if r.Cause.Commit == ev.CheckSHA && r.Cause.Forge == ev.Forge && r.Kind == types.KindBranch {
			cause := r.Cause
			cause.Kind, cause.Actor, cause.DeliveryID = "retest", ev.Sender, ev.DeliveryID
			_, err := b.enqueue(ctx, pipeline.Request{Project: r.Project, Kind: r.Kind, Cause: cause,
				GitURL: r.GitURL, Branch: r.Branch, Commit: r.Commit})
			return err
		}
	}
	return nil
}

func runSeq(id string) uint64 { n, _ := strconv.ParseUint(id, 10, 64); return n }

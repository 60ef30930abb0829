package bot

import (
	"context"
	"fmt"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/types"
)

// resolveBranch is the default Config.ResolveCommit: the commit branch of
// gitURL points at now (git ls-remote).
func resolveBranch(ctx context.Context, gitURL, branch string) (string, error) {
	refs, err := gitsrc.LsRemote(ctx, gitURL)
	if err != nil {
		return "", err
	}
	sha, ok := refs["refs/heads/"+branch]
	if !ok {
		return "", fmt.Errorf("no branch %q in %s", branch, redact.URL(gitURL))
	}
	return sha, nil
}

// pinTrials fixes the commit each trial build of an index pull request
// builds: the one an earlier trial of the same head built (a /retest
// builds again what was approved), else the proposed branch's commit now,
// when the trial is approved. An entry whose branch cannot be resolved
// gets a lint error instead of a run.
func (b *Bot) pinTrials(ctx context.Context, ev *event.Event, reqs []pipeline.Request, res *indexResult) []pipeline.Request {
	pinned := map[string]string{} // project -> commit built before for this head
	if rec, err := b.loadPR(ctx, prKey(ev.Forge, ev.Repo.FullName, ev.PR.Number)); err == nil && rec != nil && rec.HeadSHA == ev.PR.HeadSHA {
		for _, id := range rec.Runs {
			// Oldest first: the first trial of the head fixed the commit.
			if r, err := b.cfg.Store.Run(ctx, id); err == nil && r.Kind == types.KindTrial && r.Commit != "" {
				if _, ok := pinned[r.Project]; !ok {
					pinned[r.Project] = r.Commit
				}
			}
		}
	}
	resolve := b.cfg.ResolveCommit
	if resolve == nil {
		resolve = resolveBranch
	}
	out := reqs[:0]
	for _, req := range reqs {
		if req.Kind != types.KindTrial || req.Entry == nil || req.Commit != "" {
			out = append(out, req)
			continue
		}
		if sha, ok := pinned[req.Project]; ok {
			req.Commit = sha
			out = append(out, req)
			continue
		}
		sha, err := resolve(ctx, req.Entry.GitURL, req.Entry.GitBranch)
		if err != nil {
			msg := b.cfg.Masker.String(fmt.Sprintf("git-branch: cannot resolve %q of %s: %v", req.Entry.GitBranch, redact.URL(req.Entry.GitURL), err))
			for i := range res.Entries {
				if res.Entries[i].Key == req.Project {
					res.Entries[i].Failed = true
					res.Entries[i].Findings = append(res.Entries[i].Findings, msg)
				}
			}
			continue
		}
		req.Commit = sha
		out = append(out, req)
	}
	return out
}

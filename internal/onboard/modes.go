package onboard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cccp-project/cccp/internal/index"
)

// Queuer queues the first build of an entry just added to the index.
type Queuer interface {
	QueueFirst(ctx context.Context, e index.Entry, actor string) (runID string, err error)
}

// Local onboards into an index on this machine: it appends the entry to
// index.d/<app-id>.yaml under Root and queues the first build.
type Local struct {
	Root  string
	Queue Queuer // nil: nothing is queued

	mu sync.Mutex // one append at a time
}

// Submit checks e against the index under Root, appends it and queues its
// first build. An invalid entry is refused with an *InvalidError and
// nothing is written.
func (l *Local) Submit(ctx context.Context, e index.Entry, actor string) (Outcome, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	existing, err := loadOrEmpty(ctx, l.Root)
	if err != nil {
		return Outcome{}, err
	}
	file, err := appendLocal(existing, e)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Project: keyOf(e), File: file}
	if l.Queue != nil {
		id, err := l.Queue.QueueFirst(ctx, WithDefaults(e), actor)
		if err != nil {
			return out, fmt.Errorf("onboard %s: added to %s, but queueing its first build failed: %w", out.Project, file, err)
		}
		out.RunID = id
	}
	return out, nil
}

// PullRequester opens a pull request on a forge with files changed on a new
// branch; the forge adapters implement it.
type PullRequester interface {
	OpenPullRequest(ctx context.Context, repo, base, branch, title, body string, files map[string][]byte) (url string, err error)
}

// Forge onboards by pull request on the index repository: Root is a
// checkout of Repo at Base, read for the current file text and for the
// duplicate and dependency checks.
type Forge struct {
	Root string
	Repo string // forge full name, e.g. org/container-index
	Base string // base branch, e.g. master
	PR   PullRequester
}

// Submit checks e and opens a pull request adding it.
func (f *Forge) Submit(ctx context.Context, e index.Entry, actor string) (Outcome, error) {
	existing, err := loadOrEmpty(ctx, f.Root)
	if err != nil {
		return Outcome{}, err
	}
	p, err := prepare(existing, e)
	if err != nil {
		return Outcome{}, fmt.Errorf("onboard %s: %w", keyOf(e), err)
	}
	if ie := p.invalid(); ie != nil {
		return Outcome{}, ie
	}
	name := p.entry.Key()
	rel, err := filepath.Rel(existing.Root, p.file)
	if err != nil {
		return Outcome{}, fmt.Errorf("onboard %s: %w", name, err)
	}
	rel = filepath.ToSlash(rel)
	// One branch per entry: a name has one entry per desired-tag, and two
	// of them may be proposed at once.
	branch := "cccp/onboard-" + p.entry.AppID + "-" + p.entry.JobID + "-" + refSafe(p.entry.DesiredTag)
	title := "Add " + name
	body := fmt.Sprintf("Adds `%s` to the container index (requested by %s through cccp).\n\n```yaml\n%s```\n",
		name, actor, RenderEntry(p.entry))
	url, err := f.PR.OpenPullRequest(ctx, f.Repo, f.Base, branch, title, body, map[string][]byte{rel: p.text})
	if err != nil {
		return Outcome{}, fmt.Errorf("onboard %s: open pull request on %s: %w", name, f.Repo, err)
	}
	return Outcome{Project: name, File: rel, PullRequest: url}, nil
}

// refSafe makes a tag (letters, digits, '_', '.', '-') usable in a git
// branch name, which may not hold "..", end with "." or end with ".lock".
func refSafe(tag string) string {
	for strings.Contains(tag, "..") {
		tag = strings.ReplaceAll(tag, "..", ".")
	}
	tag = strings.TrimSuffix(tag, ".")
	if strings.HasSuffix(tag, ".lock") {
		tag = strings.TrimSuffix(tag, ".lock") + "_lock"
	}
	return tag
}

func loadOrEmpty(ctx context.Context, root string) (*index.Index, error) {
	existing, _, err := index.Load(ctx, root, index.LoadOptions{})
	if errors.Is(err, index.ErrNoIndex) {
		return index.NewIndex(root, index.IndexD, nil), nil
	}
	if err != nil {
		return nil, fmt.Errorf("onboard: %w", err)
	}
	return existing, nil
}

package rescan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// findings are the scans' findings of a run's test stage, and whether every
// scan ran (a scan that could not run has no findings to compare).
func findings(run *store.Run) ([]store.Finding, bool) {
	var out []store.Finding
	seen := 0
	for _, st := range run.Stages {
		if st.Name != types.StageTest {
			continue
		}
		for _, c := range st.Checks {
			if !slices.Contains(pipeline.RescanChecks, c.Name) {
				continue
			}
			if strings.HasPrefix(c.Summary, "could not run") {
				return nil, false
			}
			seen++
			for _, f := range c.Findings {
				out = append(out, store.Finding{Check: c.Name, Text: f})
			}
		}
	}
	return out, seen > 0
}

// diff is what is in now and not in before (new), and the other way round
// (resolved), each in its own order.
func diff(before, now []store.Finding) (added, resolved []store.Finding) {
	in := func(list []store.Finding, f store.Finding) bool { return slices.Contains(list, f) }
	for _, f := range now {
		if !in(before, f) {
			added = append(added, f)
		}
	}
	for _, f := range before {
		if !in(now, f) {
			resolved = append(resolved, f)
		}
	}
	return added, resolved
}

// scanOf is what the rescan run found and what changed since the
// previous scan of the same digest, or, when there is none (the first
// rescan, or the first since a new image was delivered), since the
// delivering run's own scans.
func (s *Scanner) scanOf(ctx context.Context, rescanID string, delivered, run *store.Run, digest string) (*store.Scan, error) {
	ctx = context.WithoutCancel(ctx)
	scan := &store.Scan{Project: run.Project, RescanID: rescanID, RunID: run.ID, Digest: digest,
		Time: run.Finished, State: store.Failed}
	if scan.Time.IsZero() {
		scan.Time = time.Now().UTC()
	}
	now, ok := findings(run)
	if ok {
		scan.State, scan.Findings = store.Passed, now
		before, err := s.previous(ctx, run.Project, digest, delivered)
		if err != nil {
			return nil, err
		}
		scan.New, scan.Resolved = diff(before, now)
	}
	return scan, nil
}

// previous are the findings a new scan of digest is compared with.
func (s *Scanner) previous(ctx context.Context, project, digest string, delivered *store.Run) ([]store.Finding, error) {
	scans, err := s.cfg.Store.Scans(ctx, project, 20)
	if err != nil {
		return nil, fmt.Errorf("previous scans of %s: %w", project, err)
	}
	for _, sc := range scans {
		if sc.State != store.Passed {
			continue // could not scan: nothing to compare with
		}
		if sc.Digest == digest {
			return sc.Findings, nil
		}
		break // a newer image was delivered since
	}
	f, _ := findings(delivered)
	return f, nil
}

// notify tells project's notify-email what changed.
func (s *Scanner) notify(ctx context.Context, project string, scan *store.Scan) {
	if s.cfg.Notifier == nil {
		return
	}
	var to []string
	var link string
	for _, e := range s.cfg.Entries() {
		if e.Key() == project {
			to = e.NotifyEmail
			if s.cfg.BaseURL != "" {
				link = s.cfg.BaseURL + "/projects/" + e.AppID + "/" + e.JobID
			}
		}
	}
	if len(to) == 0 {
		return
	}
	subject, text := message(project, scan, link)
	if err := s.cfg.Notifier.Notify(context.WithoutCancel(ctx), to, subject, text); err != nil {
		s.log.Error("rescan: notify", "project", project, "err", err)
	}
}

// message is the mail about a changed scan.
func message(project string, scan *store.Scan, link string) (subject, text string) {
	var parts []string
	if n := len(scan.New); n > 0 {
		parts = append(parts, plural(n, "new finding"))
	}
	if n := len(scan.Resolved); n > 0 {
		parts = append(parts, plural(n, "resolved finding"))
	}
	subject = fmt.Sprintf("cccp rescan of %s: %s", project, strings.Join(parts, ", "))
	var b strings.Builder
	fmt.Fprintf(&b, "The rescan of %s (image %s, run %s) found changes since its last scan.\n", project, scan.Digest, scan.RunID)
	for _, part := range []struct {
		title string
		list  []store.Finding
	}{{"New", scan.New}, {"Resolved", scan.Resolved}} {
		if len(part.list) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", part.title)
		for _, f := range part.list {
			fmt.Fprintf(&b, "  %s: %s\n", f.Check, f.Text)
		}
	}
	fmt.Fprintf(&b, "\nThe image is not rebuilt by a rescan; a rebuild picks the updates up.\n")
	if link != "" {
		fmt.Fprintf(&b, "Findings and their history: %s\n", link)
	}
	return subject, b.String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

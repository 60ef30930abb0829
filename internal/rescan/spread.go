package rescan

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// DefaultSpread is the window a scheduled rescan starts its entries over,
// unless configured (cccp serve's default; the zero Config starts them
// all at once).
const DefaultSpread = time.Hour

// planDue sets when each queued entry of r is to start: evenly over spread
// from r.Started, in the order of a hash of the entry's key. The order
// depends on nothing but the keys, so an entry is scanned at about the
// same offset in every rescan (exactly the same while the index keeps its
// entries), and which entries come first is not up to their names.
// Entries skipped already have no due time.
func planDue(r *store.Rescan, spread time.Duration) {
	var queued []*store.RescanEntry
	for i := range r.Entries {
		if e := &r.Entries[i]; e.State == store.Queued {
			queued = append(queued, e)
		}
	}
	slices.SortFunc(queued, func(a, b *store.RescanEntry) int { return byRank(a.Project, b.Project) })
	n := time.Duration(len(queued))
	for k, e := range queued {
		// spread/n*k, not spread*k/n: a week's spread over a few thousand
		// entries would overflow; what is lost is under a nanosecond each.
		e.Due = r.Started.Add(spread / n * time.Duration(k))
	}
}

// rank is where an entry's key falls in every rescan's order.
func rank(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

func byRank(a, b string) int {
	return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
}

// item is an entry of a rescan to scan: when, and the run it had started
// (resumed) if any.
type item struct {
	project string
	runID   string
	due     time.Time
}

// items are r's entries not yet done, in the order to start them: first
// those whose runs are already in the pipeline (a resumed rescan: they
// ran or waited while cccp was stopped), then the others by due time.
func items(r *store.Rescan) []item {
	var out []item
	for _, e := range r.Entries {
		switch {
		case e.State == store.Running && e.RunID != "":
			out = append(out, item{project: e.Project, runID: e.RunID})
		case !e.State.Done():
			out = append(out, item{project: e.Project, due: e.Due})
		}
	}
	waiting := func(it item) int { // 0 with a run, 1 without
		if it.runID != "" {
			return 0
		}
		return 1
	}
	slices.SortFunc(out, func(a, b item) int {
		return cmp.Or(cmp.Compare(waiting(a), waiting(b)), a.due.Compare(b.due), byRank(a.project, b.project))
	})
	return out
}

// Package retention decides which runs cccp forgets and carries it out:
// the run records (internal/store), their logs (internal/runlog) and the
// run-<ID> tags that pull-request and trial runs pushed, and the git
// mirrors (DATA/mirrors) no one used for a month or whose URL left the
// index (mirrors.go), and what cccp's builds pulled and cached in their
// own buildah storage that no build used for a while (buildcache.go). It
// also measures the data folder.
//
// The policy is a pure function (Policy.Select): a run goes when it is
// neither among the newest KeepLast runs of its project nor younger than
// KeepFor. Whatever the policy says, a run stays when it is not finished,
// when it is the newest run of its kind in its project (the store's
// latest/ index points at it), when it is the newest delivered run of its
// project, or when a tag other than a run-<ID> tag still points at one of
// its images.
//
// Blobs are not deleted here: removing a tag leaves its manifest untagged,
// and the registry's online garbage collection (internal/registry, GC)
// removes it and the blobs nothing else uses.
package retention

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Policy says which finished runs may go.
type Policy struct {
	// KeepLast keeps the newest KeepLast runs (of the kinds below) of each
	// project.
	KeepLast int
	// KeepFor keeps every run created less than KeepFor ago.
	KeepFor time.Duration
	// Kinds are the run kinds the policy prunes; runs of other kinds are
	// kept and do not count towards KeepLast. Empty: every kind.
	Kinds []types.RunKind
}

// Enabled reports whether the policy prunes anything: with neither
// KeepLast nor KeepFor set it keeps everything.
func (p Policy) Enabled() bool { return p.KeepLast > 0 || p.KeepFor > 0 }

// Prune is one run the policy lets go, with the registry tags that go with
// it.
type Prune struct {
	Run *store.Run
	// Tags are the run-<ID> image references the run pushed (pull request
	// and trial runs); branch runs move shared tags and have none here.
	Tags []string
}

// Select returns the runs of runs that may go at now, oldest first. live
// holds the digests that tags other than run-<ID> tags point at.
func (p Policy) Select(runs []*store.Run, now time.Time, live map[string]bool) []Prune {
	if !p.Enabled() {
		return nil
	}
	byProject := map[string][]*store.Run{}
	for _, r := range runs {
		byProject[r.Project] = append(byProject[r.Project], r)
	}
	var out []Prune
	for _, rs := range byProject {
		slices.SortFunc(rs, func(a, b *store.Run) int { return cmp.Compare(seq(b), seq(a)) }) // newest first
		newestOfKind := map[types.RunKind]bool{}
		delivered, counted := false, 0
		for _, r := range rs {
			keep := false
			if !newestOfKind[r.Kind] {
				newestOfKind[r.Kind] = true
				keep = true // latest/ points at it
			}
			if r.Kind == types.KindBranch && r.State == store.Passed && !delivered {
				delivered = true
				keep = true
			}
			if len(p.Kinds) > 0 && !slices.Contains(p.Kinds, r.Kind) {
				continue
			}
			counted++
			switch {
			case keep, !r.State.Done(), counted <= p.KeepLast,
				p.KeepFor > 0 && now.Sub(r.Created) < p.KeepFor, usesLive(r, live):
				continue
			}
			out = append(out, Prune{Run: r, Tags: runTags(r)})
		}
	}
	slices.SortFunc(out, func(a, b Prune) int { return cmp.Compare(seq(a.Run), seq(b.Run)) })
	return out
}

func seq(r *store.Run) uint64 {
	n, _ := strconv.ParseUint(r.ID, 10, 64)
	return n
}

func usesLive(r *store.Run, live map[string]bool) bool {
	for _, im := range r.Images {
		if live[im.Digest] {
			return true
		}
	}
	for _, s := range r.Stages {
		if s.Digest != "" && live[s.Digest] {
			return true
		}
	}
	return false
}

// runTags returns the run-<ID> references among a run's images.
func runTags(r *store.Run) []string {
	var out []string
	for _, im := range r.Images {
		if _, tag, ok := SplitRef(im.Ref); ok && tag == RunTag(r.ID) && !slices.Contains(out, im.Ref) {
			out = append(out, im.Ref)
		}
	}
	return out
}

// RunTag is the tag a pull-request or trial run pushes its image to.
func RunTag(id string) string { return "run-" + id }

// IsRunTag reports whether tag is a run-<ID> tag.
func IsRunTag(tag string) bool {
	n, ok := strings.CutPrefix(tag, "run-")
	_, err := strconv.ParseUint(n, 10, 64)
	return ok && err == nil
}

// SplitRef splits "host/ns/name:tag" into its repository and tag; ok is
// false for a digest reference or one without a tag.
func SplitRef(ref string) (repo, tag string, ok bool) {
	if strings.Contains(ref, "@") {
		return "", "", false
	}
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || i < strings.LastIndexByte(ref, '/') {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

package basewatch

import (
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Collect lists the base images to watch from each entry's latest branch
// run (keyed by entry key, as store.LatestRuns gives them): the images its
// build started FROM that the pipeline did not pin to a parent of this
// index. keep, when set, drops entries no longer in the index. An image
// written with a build argument, pinned by digest, or `scratch` cannot
// change under a tag and is not watched. Host-less names are Docker Hub's,
// as a build resolves them. The digest a build recorded for a base is its
// baseline (Watched.Built).
func Collect(runs map[string]*store.Run, keep func(key string) bool) []Watched {
	users := map[string][]string{}
	built := map[string]map[string]string{}
	for key, run := range runs {
		if run == nil || (keep != nil && !keep(key)) {
			continue
		}
		for _, st := range run.Stages {
			if st.Name != types.StageBuild {
				continue
			}
			for _, b := range st.Bases {
				ref, ok := FullRef(b.Image)
				if b.Pinned || !ok {
					continue
				}
				if !slices.Contains(users[ref], key) {
					users[ref] = append(users[ref], key)
				}
				if b.Digest != "" {
					if built[ref] == nil {
						built[ref] = map[string]string{}
					}
					built[ref][key] = b.Digest
				}
			}
		}
	}
	out := make([]Watched, 0, len(users))
	for ref, keys := range users {
		slices.Sort(keys)
		out = append(out, Watched{Ref: ref, Entries: keys, Built: built[ref]})
	}
	slices.SortFunc(out, func(a, b Watched) int { return strings.Compare(a.Ref, b.Ref) })
	return out
}

// FullRef is the full reference (registry/repository:tag) of an image as
// written after FROM, and false for one that cannot move: `scratch`, a
// digest, a build argument, or an unparsable name.
func FullRef(image string) (string, bool) {
	if image == "" || strings.EqualFold(image, "scratch") || strings.ContainsAny(image, "$@") {
		return "", false
	}
	r, err := name.ParseReference(image, name.WeakValidation)
	if err != nil {
		return "", false
	}
	return r.Name(), true
}

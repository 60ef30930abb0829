package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/buildkey"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// Up-to-date builds. A branch run computes its build key (internal/buildkey)
// before building: the resolved commit, the object IDs of the build
// context and the Dockerfile at that commit (Config.Trees), the entry's
// fields, every FROM image's digest now and the stage configuration. When
// the key equals the key of the entry's last delivered run, and the run is
// not forced, nothing can differ from what was delivered: the run ends at
// once, marked UpToDate, its stages skipped with ReasonUpToDate, and its
// images are the ones delivered before with their digests (so no cascade
// follows). A run that builds records the key of what it built, with the
// bases the backend reported.
//
// The FROM images before a build are those the last delivered run
// recorded: when the Dockerfile changed its object ID changes the key
// anyway, so a stale list can never make a changed build look unchanged.

// ReasonUpToDate is the reason of the stages of a run that found nothing to
// build.
const ReasonUpToDate = "UpToDate"

// UpToDateNote is what an up-to-date run says about itself.
const UpToDateNote = "up to date, nothing to build"

// Trees gives git object IDs at a commit without a checkout.
type Trees interface {
	// ObjectIDs returns the object ID of each path (relative to the
	// repository root, "" for the root tree) at commit.
	ObjectIDs(ctx context.Context, gitURL, commit string, paths ...string) ([]string, error)
}

// BaseDigests gives the digest an image points at, at most a short while
// ago: many runs FROM one base ask its registry once (internal/digestcache
// does, shared with the base-image watcher).
type BaseDigests interface {
	Digest(ctx context.Context, ref string) (string, error)
}

// deliveredFinder finds the run an entry's tags point at; the store does
// (store.DB.LastDelivered), however many runs of other kinds came since.
type deliveredFinder interface {
	LastDelivered(ctx context.Context, project string) (*store.Run, error)
}

// forced tells whether a run builds even when it is up to date: asked for
// (Request.Force), or a /retest.
func forced(run *store.Run) bool {
	return run.Force || run.Cause.Kind == types.CauseRetest
}

// lastDelivered is the entry's last delivering branch run: the one whose
// image the tags point at (an up-to-date run since has its key and image).
// Without a build key (it could not be computed) it is not returned, since
// an older key would describe another image.
func (ex *execution) lastDelivered(ctx context.Context) (*store.Run, error) {
	finder, ok := ex.r.cfg.Store.(deliveredFinder)
	if !ok {
		return nil, nil
	}
	r, err := finder.LastDelivered(ctx, ex.run.Project)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("last delivered run of %s: %w", ex.run.Project, err)
	case r.ID == ex.run.ID || r.BuildKey == "":
		return nil, nil
	}
	return r, nil
}

// keyInputs gathers the inputs of the run's build key except its bases.
func (ex *execution) keyInputs(ctx context.Context, commit string) (buildkey.Inputs, error) {
	e := ex.entry
	in := buildkey.Inputs{
		GitURL: ex.run.GitURL,
		Commit: commit,
		Entry: map[string]string{
			"git-path": e.GitPath, "target-file": e.TargetFile, "build-context": e.BuildContext,
			"prebuild-script": e.PrebuildScript, "prebuild-context": e.PrebuildContext,
			"depends-on": strings.Join(e.DependsOn, ","), "tags": strings.Join(e.Tags(), ","),
		},
		Stage: ex.stageConfig(),
	}
	if t := ex.r.cfg.Trees; t != nil {
		ids, err := t.ObjectIDs(ctx, ex.run.GitURL, commit, repoPath(e.GitPath, e.BuildContext), repoPath(e.GitPath, e.TargetFile))
		if err != nil {
			return in, fmt.Errorf("build context of %s at %s: %w", redact.URL(ex.run.GitURL), commit, err)
		}
		in.ContextTree, in.Dockerfile = ids[0], ids[1]
	}
	return in, nil
}

// stageConfig is the configuration of cccp that changes what a run builds
// or whether it passes.
func (ex *execution) stageConfig() map[string]string {
	var blocking []string
	for n, on := range ex.r.cfg.Blocking {
		if on {
			blocking = append(blocking, string(n))
		}
	}
	slices.Sort(blocking)
	attest := "off"
	if ex.r.cfg.Attester != nil {
		attest = "on"
	}
	return map[string]string{
		"builder":  backendName(ex.r.cfg.Builder),
		"tester":   backendName(ex.r.cfg.Tester),
		"blocking": strings.Join(blocking, ","),
		"attest":   attest,
		"own":      strings.Join(ex.r.cfg.OwnRegistries, ","),
		"salt":     ex.r.cfg.BuildKeySalt,
	}
}

// repoPath joins an entry's git-path and a path in it to a path relative to
// the repository root ("" for the root).
func repoPath(gitPath, p string) string {
	c := path.Clean("/" + gitPath + "/" + p)
	return strings.TrimPrefix(c, "/")
}

// baseDigest is the digest a FROM image resolves to now: a parent of this
// index by its delivered digest, any other image by a HEAD request made at
// most Config.BaseDigests' TTL ago.
func (ex *execution) baseDigest(ctx context.Context, image string, pinned bool) (string, error) {
	if image == "scratch" {
		return "scratch", nil
	}
	if strings.Contains(image, "$") {
		return "", fmt.Errorf("FROM %s uses a build argument", image)
	}
	if pinned {
		pin, ok, err := ex.pinParent(ctx, image, io.Discard)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("parent %s has no delivered image", image)
		}
		return digestOf(pin.DigestRef), nil
	}
	if i := strings.LastIndexByte(image, '@'); i >= 0 {
		return image[i+1:], nil // already pinned by its Dockerfile
	}
	return ex.r.cfg.BaseDigests.Digest(ctx, fullRef(image))
}

// fullRef names an image as written after FROM with its registry and tag,
// as a build resolves it: a name without a registry host is Docker Hub's
// (`centos:7` is docker.io/library/centos:7), a name without a tag is
// :latest.
func fullRef(image string) string {
	first, _, hasSlash := strings.Cut(image, "/")
	if !hasSlash || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		if !hasSlash {
			image = "library/" + image
		}
		image = "docker.io/" + image
	}
	if last := image[strings.LastIndexByte(image, '/')+1:]; !strings.Contains(last, ":") {
		image += ":latest"
	}
	return image
}

func digestOf(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

// upToDate decides, before a branch run's build stage starts, whether it
// has anything to build; when not, it records the run as up to date, in one
// write, and returns true. Any input it cannot learn makes it build (and
// say why in the log). A branch it resolves is stored as the run's commit
// either way, so the build does not ask again.
func (ex *execution) upToDate(ctx context.Context, log io.Writer) bool {
	if ex.run.Kind != types.KindBranch {
		return false
	}
	last, err := ex.lastDelivered(ctx)
	if err != nil || last == nil {
		if err != nil {
			fmt.Fprintf(log, "cccp: building: %v\n", err)
		}
		return false
	}
	commit := ex.run.Commit
	if commit == "" {
		if commit, err = ex.r.cfg.Resolver.Resolve(ctx, ex.run.GitURL, ex.run.Branch); err != nil {
			return false // the build's own resolve fails the run with the reason
		}
		fmt.Fprintf(log, "cccp: branch %s of %s is at commit %s\n", ex.run.Branch, redact.URL(ex.run.GitURL), commit)
	}
	key, why := ex.currentKey(ctx, commit, last)
	upToDate := why == "" && key == last.BuildKey
	switch {
	case why != "":
		fmt.Fprintf(log, "cccp: building: %s\n", why)
	case upToDate && forced(ex.run):
		fmt.Fprintf(log, "cccp: inputs unchanged since run %s, building anyway (forced)\n", last.ID)
		upToDate = false
	}
	if !upToDate {
		if ex.run.Commit == "" {
			ex.update(ctx, func(run *store.Run) { run.Commit = commit })
		}
		return false
	}
	build := stageOf(last, types.StageBuild)
	fmt.Fprintf(log, "cccp: %s: inputs unchanged since run %s (build key %s)\n", UpToDateNote, last.ID, key)
	var images []store.Image
	for _, im := range last.Images {
		if im.Digest == build.Digest && !strings.HasSuffix(im.Ref, ":"+stageTag(ex.entry, TagTest)) &&
			!strings.HasSuffix(im.Ref, ":"+stageTag(ex.entry, TagRC)) {
			images = append(images, im)
		}
	}
	note := UpToDateNote + " (same inputs as run " + last.ID + ")"
	ex.update(ctx, func(run *store.Run) {
		now := time.Now().UTC()
		if run.State == store.Queued {
			run.State, run.Started = store.Running, now
		}
		run.Commit, run.UpToDate, run.BuildKey, run.Images = commit, true, key, images
		for i := range run.Stages {
			s := &run.Stages[i]
			if s.State == store.Queued || s.State == store.Running {
				s.State, s.Reason, s.Error, s.Finished = store.Skipped, ReasonUpToDate, note, now
			}
			if s.Name == types.StageBuild {
				s.Digest, s.Bases = build.Digest, slices.Clone(build.Bases)
			}
		}
	})
	return ex.run.UpToDate
}

// currentKey is the build key of commit with the bases of the last
// delivered run as they resolve now, or why there is none.
func (ex *execution) currentKey(ctx context.Context, commit string, last *store.Run) (key, why string) {
	in, err := ex.keyInputs(ctx, commit)
	if err != nil {
		return "", err.Error()
	}
	for _, b := range stageOf(last, types.StageBuild).Bases {
		d, err := ex.baseDigest(ctx, b.Image, b.Pinned)
		if err != nil {
			return "", fmt.Sprintf("digest of FROM %s: %v", b.Image, err)
		}
		in.Bases = append(in.Bases, buildkey.Base{Image: b.Image, Digest: d})
	}
	key, err = buildkey.Sum(in)
	if err != nil {
		return "", err.Error()
	}
	return key, ""
}

// recordKey stores the key of what a build built, with the bases the
// backend reported; a base it reported without digest is looked up now,
// and that digest is recorded with the base too (what internal/basewatch
// compares a base image's digest with when it first sees it).
func (ex *execution) recordKey(ctx context.Context, commit string, bases []store.Base, log io.Writer) {
	if ex.run.Kind != types.KindBranch {
		return
	}
	in, err := ex.keyInputs(ctx, commit)
	learnt := map[int]string{}
	if err == nil {
		for i, b := range bases {
			d := b.Digest
			if d == "" {
				if d, err = ex.baseDigest(ctx, b.Image, b.Pinned); err != nil {
					err = fmt.Errorf("digest of FROM %s: %w", b.Image, err)
					break
				}
				if strings.HasPrefix(d, "sha256:") {
					learnt[i] = d
				}
			}
			in.Bases = append(in.Bases, buildkey.Base{Image: b.Image, Digest: d})
		}
	}
	var key string
	if err == nil {
		key, err = buildkey.Sum(in)
	}
	if err != nil {
		fmt.Fprintf(log, "cccp: no build key (the next trigger builds again): %v\n", err)
		return
	}
	ex.update(ctx, func(run *store.Run) {
		run.BuildKey = key
		st := stageOf(run, types.StageBuild)
		for i, d := range learnt {
			if i < len(st.Bases) && st.Bases[i].Digest == "" {
				st.Bases[i].Digest = d
			}
		}
	})
}

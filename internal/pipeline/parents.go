package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/index"
)

// Parent pinning is a pipeline decision: a child is built FROM exactly the
// parent image that passed its tests and was delivered, not whatever the
// tag says when the build pulls it. The pipeline pins the parents named in
// the entry's depends-on before the build (BuildSpec.Parents), and answers
// the backend about any other FROM line that names an image of this index
// (BuildSpec.Resolve); only the backend reads the Dockerfile.

// parents pins every depends-on of the entry that this index builds and
// has delivered.
func (ex *execution) parents(ctx context.Context, log io.Writer) ([]backend.ParentPin, error) {
	var pins []backend.ParentPin
	for _, d := range ex.entry.DependsOn {
		p, ok, err := ex.pinParent(ctx, d, log)
		if err != nil {
			return nil, err
		}
		if ok {
			pins = append(pins, p)
		}
	}
	return pins, nil
}

// pinParent resolves one image reference (a FROM image or a depends-on) to
// the digest its entry delivered last. It returns false for an image that
// is not this index's or that has no delivered image yet (the build then
// uses it as written).
func (ex *execution) pinParent(ctx context.Context, image string, log io.Writer) (backend.ParentPin, bool, error) {
	repo, tag, ok := backend.OwnImage(image, ex.r.cfg.OwnRegistries)
	if !ok {
		return backend.ParentPin{}, false, nil
	}
	parent, ok := ex.r.cfg.Entries(entryNameOf(repo) + ":" + tag)
	if !ok {
		return backend.ParentPin{}, false, nil
	}
	ref := ex.r.cfg.Target.Ref(parent.Repository(), tag)
	digest, err := ex.r.cfg.Images.Digest(ctx, ref)
	if err != nil {
		if ctx.Err() != nil {
			return backend.ParentPin{}, false, ctx.Err()
		}
		fmt.Fprintf(log, "cccp: parent %s has no delivered image yet (%v); building FROM it as written\n", ref, err)
		return backend.ParentPin{}, false, nil
	}
	pinned := ex.r.cfg.Target.DigestRef(parent.Repository(), digest)
	if v := ex.r.cfg.Parents; v != nil {
		if err := v.Verify(ctx, pinned); err != nil {
			fmt.Fprintf(log, "cccp: refusing to build FROM %s: %v\n", image, err)
			return backend.ParentPin{}, false, fmt.Errorf("FROM %s: %w", image, err)
		}
		fmt.Fprintf(log, "cccp: parent %s is signed by this cccp\n", pinned)
	}
	return backend.ParentPin{
		Key:        parent.Key(),
		Repository: parent.Repository(),
		Tag:        tag,
		DigestRef:  pinned,
	}, true, nil
}

// entryNameOf turns a repository path into an entry name: `app/job`, or
// `library/job` for a root-namespace image.
func entryNameOf(repo string) string {
	if !strings.Contains(repo, "/") {
		return index.LibraryNamespace + "/" + repo
	}
	return repo
}

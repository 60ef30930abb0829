package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/cccp-project/cccp/internal/index"
)

// pinParents rewrites the Dockerfile's FROM lines that name an image this
// index builds so that they name the digest delivered last, which is what a
// rebuilt parent triggers its children with: a child is built FROM exactly
// the parent image that passed its tests, not whatever the tag says when
// the build pulls it. It returns the path of the rewritten Dockerfile, or
// "" when no line changed.
func (ex *execution) pinParents(ctx context.Context, dockerfile string, log io.Writer) (string, error) {
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", ex.entry.TargetFile, err)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return "", fmt.Errorf("%s: %w", ex.entry.TargetFile, err)
	}
	lines := strings.SplitAfter(string(src), "\n")
	changed := false
	for _, node := range res.AST.Children {
		if !strings.EqualFold(node.Value, "from") || node.Next == nil {
			continue
		}
		image := node.Next.Value
		repo, tag, ok := ex.r.ownImage(image)
		if !ok {
			continue
		}
		parent, ok := ex.r.cfg.Entries(entryNameOf(repo) + ":" + tag)
		if !ok {
			continue
		}
		ref := ex.r.cfg.Target.Ref(parent.Repository(), tag)
		digest, err := ex.r.cfg.Images.Digest(ctx, ref)
		if err != nil {
			fmt.Fprintf(log, "cccp: %s:%d: parent %s has no delivered image yet (%v); building FROM it as written\n",
				ex.entry.TargetFile, node.StartLine, ref, err)
			continue
		}
		pinned := ex.r.cfg.Target.DigestRef(parent.Repository(), digest)
		i := node.StartLine - 1
		if i < 0 || i >= len(lines) || !strings.Contains(lines[i], image) {
			continue
		}
		lines[i] = strings.Replace(lines[i], image, pinned, 1)
		changed = true
		fmt.Fprintf(log, "cccp: %s:%d: FROM %s pinned to %s\n", ex.entry.TargetFile, node.StartLine, image, pinned)
	}
	if !changed {
		return "", nil
	}
	out := filepath.Join(ex.dir, "Dockerfile.pinned")
	if err := os.WriteFile(out, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return "", fmt.Errorf("write pinned Dockerfile: %w", err)
	}
	return out, nil
}

// ownImage tells whether image (as written after FROM) names an image of
// this index: no registry host, the target registry's host, or one of the
// configured aliases. It returns the repository path and tag.
func (r *Runner) ownImage(image string) (repo, tag string, ok bool) {
	if strings.Contains(image, "$") || strings.Contains(image, "@") {
		return "", "", false // build args or already pinned
	}
	host, path := "", image
	if i := strings.IndexByte(image, '/'); i > 0 {
		first := image[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			host, path = first, image[i+1:]
		}
	}
	if host != "" && !r.ownHost(host) {
		return "", "", false
	}
	tag = index.DefaultDesiredTag
	if i := strings.LastIndexByte(path, ':'); i > 0 {
		path, tag = path[:i], path[i+1:]
	}
	return path, tag, path != ""
}

func (r *Runner) ownHost(host string) bool {
	for _, a := range r.cfg.OwnRegistries {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// entryNameOf turns a repository path into an entry name: `app/job`, or
// `library/job` for a root-namespace image.
func entryNameOf(repo string) string {
	if !strings.Contains(repo, "/") {
		return index.LibraryNamespace + "/" + repo
	}
	return repo
}

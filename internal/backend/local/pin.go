package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/cccp-project/cccp/internal/backend"
)

// pinFrom rewrites the Dockerfile's FROM lines that the pipeline pins
// (spec.Pin: its Parents, else its Resolve) to the pinned digest reference,
// writing the result to out. It returns out, or "" when no line changed,
// and every base the build starts FROM. A FROM of an earlier stage of the
// same Dockerfile is not a base.
func pinFrom(ctx context.Context, spec *backend.BuildSpec, dockerfile, out string, log io.Writer) (string, []backend.Base, error) {
	name := filepath.Base(dockerfile)
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		return "", nil, stageErr(ReasonBadPath, fmt.Errorf("read %s: %w", name, err))
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return "", nil, stageErr(ReasonBuildFailed, fmt.Errorf("%s: %w", name, err))
	}
	lines := strings.SplitAfter(string(src), "\n")
	changed := false
	stages := map[string]bool{}
	var bases []backend.Base
	for _, node := range res.AST.Children {
		if !strings.EqualFold(node.Value, "from") || node.Next == nil {
			continue
		}
		image := node.Next.Value
		own := stages[strings.ToLower(image)]
		if n := node.Next.Next; n != nil && strings.EqualFold(n.Value, "as") && n.Next != nil {
			stages[strings.ToLower(n.Next.Value)] = true
		}
		if own {
			continue // an earlier stage of this Dockerfile
		}
		pin, ok, err := spec.Pin(ctx, image)
		if err != nil {
			return "", nil, fmt.Errorf("%s:%d: pin FROM %s: %w", name, node.StartLine, image, err)
		}
		i := node.StartLine - 1
		if !ok || i < 0 || i >= len(lines) || !strings.Contains(lines[i], image) {
			bases = append(bases, backend.Base{Image: image})
			continue
		}
		lines[i] = strings.Replace(lines[i], image, pin.DigestRef, 1)
		changed = true
		bases = append(bases, backend.Base{Image: image, Digest: digestOf(pin.DigestRef), Pinned: true})
		fmt.Fprintf(log, "cccp: %s:%d: FROM %s pinned to %s\n", name, node.StartLine, image, pin.DigestRef)
	}
	if !changed {
		return "", bases, nil
	}
	if err := os.WriteFile(out, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return "", nil, fmt.Errorf("write pinned Dockerfile: %w", err)
	}
	return out, bases, nil
}

func digestOf(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[i+1:]
	}
	return ""
}

package openshift

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"
	"github.com/openshift/client-go/build/clientset/versioned/scheme"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/cccp-project/cccp/internal/backend"
)

// Log streams the Build's log from builds/log with follow=true, from byte
// offset on, until the Build finishes. It waits (by watching) for the Build
// to start, since OpenShift has no log before its pod runs.
func (b *Builder) Log(ctx context.Context, h backend.Handle, offset int64, w io.Writer) (int64, error) {
	ns, name, err := parseHandle(h)
	if err != nil {
		return offset, err
	}
	p := newPacer(b.clock)
	news := true
	var build *buildv1.Build
	for {
		if build == nil || !started(build) {
			if build, err = b.follow(ctx, p, ns, name, started); err != nil {
				return offset, err
			}
		}
		if err := p.wait(ctx, news); err != nil {
			return offset, err
		}
		n, err := b.stream(ctx, ns, name, offset, w)
		offset += n
		news = n > 0
		var werr writeError
		switch {
		case errors.As(err, &werr):
			return offset, fmt.Errorf("log of build %s: %w", h, werr.err)
		case ctx.Err() != nil:
			return offset, ctx.Err()
		case err != nil && finished(build) && (apierrors.IsNotFound(err) || apierrors.IsBadRequest(err)):
			return offset, nil // it finished without a pod, so without a log
		case err != nil && !transient(err) && !apierrors.IsBadRequest(err):
			return offset, fmt.Errorf("log of build %s: %w", h, err)
		case err != nil:
			b.log.Debug("log stream", "build", h, "err", err)
		}
		if err == nil && finished(build) {
			return offset, nil // the whole log of a finished Build
		}
		// The stream ended or broke while the Build was running: read it
		// again and go on if it still runs.
		serr := err
		if build, err = b.follow(ctx, p, ns, name, func(*buildv1.Build) bool { return true }); err != nil {
			return offset, err
		}
		if serr == nil && finished(build) {
			return offset, nil // the stream ended with the Build
		}
	}
}

type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

// stream reads the log once from its start, skips the first skip bytes and
// writes the rest to w; it returns how many it wrote.
func (b *Builder) stream(ctx context.Context, ns, name string, skip int64, w io.Writer) (int64, error) {
	rc, err := b.logs.Get().Namespace(ns).Resource("builds").Name(name).SubResource("log").
		VersionedParams(&buildv1.BuildLogOptions{Follow: true}, scheme.ParameterCodec).Stream(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if skip > 0 {
		n, err := io.CopyN(io.Discard, rc, skip)
		if err == io.EOF && n < skip {
			// Shorter than what was already written: the log was cut
			// (rotated or the pod replaced); nothing new to add.
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
	}
	var written int64
	buf := make([]byte, 32<<10)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, writeError{werr}
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// fromLine matches the FROM steps buildah (`STEP 1/5: FROM image AS name`)
// and docker (`Step 1/5 : FROM image`) print in an OpenShift build log.
var fromLine = regexp.MustCompile(`^(?i:step) \d+(?:/\d+)? ?: (?i:from) +(\S+)(?: +(?i:as) +(\S+))?`)

// maxBases bounds the bases read from a log: a RUN step of the repository's
// may print lines that look like FROM steps, as many as it likes.
const maxBases = 64

// bases reads the images the build started FROM from its finished log: the
// Build object does not list them. Stage names used as images are skipped.
// At most maxBases are kept, and as many stage names; markPinned adds a
// pinned parent that the cut left out.
func (b *Builder) bases(ctx context.Context, ns, name string) ([]backend.Base, error) {
	rc, err := b.logs.Get().Namespace(ns).Resource("builds").Name(name).SubResource("log").
		VersionedParams(&buildv1.BuildLogOptions{}, scheme.ParameterCodec).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var bases []backend.Base
	stages := map[string]bool{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := fromLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		img := m[1]
		fromStage := stages[strings.ToLower(img)]
		if m[2] != "" && len(stages) < maxBases {
			stages[strings.ToLower(m[2])] = true
		}
		if fromStage || seen[img] {
			continue
		}
		seen[img] = true
		bases = append(bases, backend.Base{Image: img, Digest: digestOf(img)})
		if len(bases) == maxBases {
			break
		}
	}
	return bases, sc.Err()
}

// markPinned marks the bases that are the pinned parents, and adds a
// pinned parent the log did not show (cut off by maxBases): the pipeline
// pinned it, so the build used it.
func markPinned(bases, pinned []backend.Base) []backend.Base {
	for _, p := range pinned {
		found := false
		for i := range bases {
			if bases[i].Image == p.Image {
				bases[i].Pinned, found = true, true
			}
		}
		if !found {
			p.Pinned = true
			bases = append(bases, p)
		}
	}
	return bases
}

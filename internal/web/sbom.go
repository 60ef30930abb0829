package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// SBOMs reads the software bill of materials attached to delivered
// images.
type SBOMs interface {
	// Summary describes the SBOM of repository@digest and what changed
	// since the one of repository@previousDigest ("" for none). It
	// returns ErrNoSBOM when the image has no SBOM.
	Summary(ctx context.Context, repository, digest, previousDigest string) (SBOMSummary, error)
	// Document writes the SBOM of repository@digest to w; ErrNoSBOM when
	// there is none.
	Document(ctx context.Context, repository, digest string, w io.Writer) error
}

// ErrNoSBOM is what SBOMs return for an image without an SBOM (one
// delivered before cccp attached them).
var ErrNoSBOM = errors.New("no SBOM attached")

// SBOMPackage is one package of an SBOM.
type SBOMPackage struct{ Type, Name, Version string }

// SBOMChange is a package whose version changed.
type SBOMChange struct{ Type, Name, From, To string }

// SBOMSummary is what the project page shows of an SBOM.
type SBOMSummary struct {
	Packages int
	// Compared is true when the previous delivery had an SBOM to compare
	// with; the lists below are empty otherwise.
	Compared bool
	Added    []SBOMPackage
	Removed  []SBOMPackage
	Upgraded []SBOMChange
}

// sbomWait bounds how long the project page waits for the SBOMs.
const sbomWait = 5 * time.Second

// sbomShown caps each list of changes on the page.
const sbomShown = 50

type sbomView struct {
	Digest, PreviousDigest string
	None                   bool // the image has no SBOM
	Error                  bool // it could not be read
	Summary                SBOMSummary
	Hidden                 int // changes beyond the caps
	// Counts of the changes before capping.
	Added, Removed, Upgraded int
}

// delivery is the latest delivered image of an entry and the previous
// one with another digest.
type delivery struct {
	repository, digest, previous string
}

// latestDelivery finds the digest the newest passed branch run of the
// entry keyed project delivered under its final tags, and the previous
// other digest.
func (s *Server) latestDelivery(ctx context.Context, project string) (delivery, bool) {
	e, ok := s.entry(project)
	if !ok {
		return delivery{}, false
	}
	runs, _ := s.cfg.Runs.Runs(ctx, store.RunFilter{Project: project, States: []store.State{store.Passed}, Limit: 50})
	var d delivery
	for _, r := range runs {
		if r.Kind != types.KindBranch {
			continue
		}
		ims := deliveredImages(&e, r)
		if len(ims) == 0 {
			continue
		}
		im := ims[0]
		if d.digest == "" {
			d.repository = strings.TrimSuffix(im.Ref, ":"+imageTag(im.Ref))
			d.digest = im.Digest
			continue
		}
		if im.Digest != d.digest {
			d.previous = im.Digest
			break
		}
	}
	return d, d.digest != ""
}

func (s *Server) sbomView(ctx context.Context, project string) *sbomView {
	if s.cfg.SBOMs == nil {
		return nil
	}
	d, ok := s.latestDelivery(ctx, project)
	if !ok {
		return nil
	}
	v := &sbomView{Digest: d.digest, PreviousDigest: d.previous}
	// The page waits for the registry: a slow one costs it the section,
	// not the page.
	ctx, cancel := context.WithTimeout(ctx, sbomWait)
	defer cancel()
	sum, err := s.cfg.SBOMs.Summary(ctx, d.repository, d.digest, d.previous)
	switch {
	case errors.Is(err, ErrNoSBOM):
		v.None = true
	case err != nil:
		s.log.Warn("read SBOM", "project", project, "digest", d.digest, "err", s.mask.String(err.Error()))
		v.Error = true
	default:
		v.Added, v.Removed, v.Upgraded = len(sum.Added), len(sum.Removed), len(sum.Upgraded)
		capAt := func(n int) int {
			if n > sbomShown {
				v.Hidden += n - sbomShown
				return sbomShown
			}
			return n
		}
		sum.Added = sum.Added[:capAt(len(sum.Added))]
		sum.Removed = sum.Removed[:capAt(len(sum.Removed))]
		sum.Upgraded = sum.Upgraded[:capAt(len(sum.Upgraded))]
		v.Summary = sum
	}
	return v
}

// sbomDocument serves the SBOM of a project's latest delivered image.
func (s *Server) sbomDocument(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SBOMs == nil {
		s.notFoundPage(w, r)
		return
	}
	name := s.projectKey(r.PathValue("app"), r.PathValue("job"))
	d, ok := s.latestDelivery(r.Context(), name)
	if !ok {
		s.notFound(w, r, "There is no delivered image of "+name+".")
		return
	}
	// Written to a buffer first so a failure is still an error page.
	var buf bytes.Buffer
	err := s.cfg.SBOMs.Document(r.Context(), d.repository, d.digest, &limitedWriter{w: &buf, n: maxSBOM})
	switch {
	case errors.Is(err, ErrNoSBOM):
		s.notFound(w, r, "The image "+d.digest+" of "+name+" has no SBOM.")
		return
	case err != nil:
		s.serverError(w, r, "reading the SBOM of "+name, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="sbom.json"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(buf.Bytes())
}

// maxSBOM bounds the document served.
const maxSBOM = 64 << 20

var errTooLarge = errors.New("SBOM larger than the server serves")

type limitedWriter struct {
	w io.Writer
	n int64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errTooLarge
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

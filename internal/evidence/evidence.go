// Package evidence gives a delivered image its evidence and checks it: an
// SBOM attached to the digest, a cosign signature of the digest, and a
// signed SLSA provenance attestation. It composes the sbom, signing and
// provenance packages; the pipeline calls Attester.Attest from its
// deliver step for branch runs, `cccp verify` calls Check, and a child's
// build calls ParentCheck.Verify on each pinned parent.
package evidence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/keylock"
	"github.com/cccp-project/cccp/internal/provenance"
	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/signing"
	"github.com/cccp-project/cccp/internal/types"
)

// ErrNotDelivered refuses to sign the image of a pull-request or trial
// run: only delivered images carry cccp's signature, so a PR image can
// never pass for one.
var ErrNotDelivered = errors.New("only branch runs are signed")

// Generator makes an image's SBOM document.
type Generator interface {
	Generate(ctx context.Context, digestRef string, f sbom.Format) ([]byte, error)
}

// Delivery is one image a run delivered and what it was made from.
type Delivery struct {
	// Image is "host/repo@sha256:..." (the digest delivered).
	Image string
	Kind  types.RunKind
	// Entry is "app/job:tag"; Parameters its index fields.
	Entry      string
	Parameters map[string]string
	// SourceURL, Commit and Ref are the git repository, the exact
	// commit built and its branch.
	SourceURL, Commit, Ref string
	// Parents are the pinned parents, "host/repo@sha256:...".
	Parents []string
	// RunURL is the run's page; Started when the run began.
	RunURL  string
	Started time.Time
}

// Config configures an Attester.
type Config struct {
	Signer *signing.Signer
	// SBOM makes the documents; nil skips the SBOM.
	SBOM     Generator
	Registry sbom.Registry
	// Format of the SBOM; "" is SPDX.
	Format sbom.Format
	// BuilderID names this cccp (its base URL); Version is cccp's.
	BuilderID, Version string
	Logger             *slog.Logger
}

// Attester attaches an image's SBOM, signature and provenance.
//
// Deliveries of the same digest may run at once (two entries built from
// the same repository and commit, a retry). The Signer serialises its
// .sig and .att tags; the Attester serialises attaching SBOMs per
// digest, because go-containerregistry rewrites the digest's referrers
// tag (sha256-<hex>) by read-modify-write and two at once lose one
// entry. Both hold within one process, which is what cccp supports: one
// Attester per process, no second cccp on the same registry.
type Attester struct {
	cfg Config
	log *slog.Logger
	// referrers locks the referrers tag of a digest, by "repo@digest".
	referrers keylock.Map
}

// New returns an Attester for cfg.
func New(cfg Config) *Attester {
	if cfg.Format == "" {
		cfg.Format = sbom.SPDX
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Attester{cfg: cfg, log: log}
}

// Result says what Attest attached.
type Result struct {
	// SBOM is the artifact's reference, Packages how many it lists.
	SBOM     string
	Packages int
}

// Attest signs d's digest, attaches its SBOM and its signed provenance.
// The signature comes last: an image that carries cccp's signature has
// its evidence already attached.
func (a *Attester) Attest(ctx context.Context, d Delivery) (Result, error) {
	if d.Kind != types.KindBranch {
		return Result{}, fmt.Errorf("attest %s (%s run): %w", d.Image, d.Kind, ErrNotDelivered)
	}
	repo, digest, ok := strings.Cut(d.Image, "@")
	if !ok {
		return Result{}, fmt.Errorf("attest %s: not a digest reference", d.Image)
	}
	var res Result
	if a.cfg.SBOM != nil {
		doc, err := a.cfg.SBOM.Generate(ctx, d.Image, a.cfg.Format)
		if err != nil {
			return res, fmt.Errorf("attest %s: SBOM: %w", d.Image, err)
		}
		pkgs, err := sbom.Packages(doc)
		if err != nil {
			return res, fmt.Errorf("attest %s: %w", d.Image, err)
		}
		res.Packages = len(pkgs)
		if res.SBOM, err = a.attachSBOM(ctx, d.Image, doc); err != nil {
			return res, fmt.Errorf("attest %s: %w", d.Image, err)
		}
	}
	parents := make([]provenance.Parent, len(d.Parents))
	for i, p := range d.Parents {
		parents[i] = provenance.Parent{Ref: p}
	}
	st, err := provenance.Statement(provenance.Build{
		Image: repo, Digest: digest, BuilderID: a.cfg.BuilderID, Version: a.cfg.Version,
		Entry: d.Entry, Parameters: d.Parameters, SourceURL: d.SourceURL, Commit: d.Commit, Ref: d.Ref,
		Parents: parents, RunURL: d.RunURL, Started: d.Started, Finished: time.Now(),
	})
	if err != nil {
		return res, fmt.Errorf("attest %s: %w", d.Image, err)
	}
	if err := a.cfg.Signer.Attest(ctx, d.Image, st, provenance.PredicateType); err != nil {
		return res, fmt.Errorf("attest %s: %w", d.Image, err)
	}
	if err := a.cfg.Signer.Sign(ctx, d.Image); err != nil {
		return res, fmt.Errorf("attest %s: %w", d.Image, err)
	}
	a.log.Info("attested", "image", d.Image, "sbom", res.SBOM, "packages", res.Packages)
	return res, nil
}

// attachSBOM attaches doc to digestRef, one at a time per digest (the
// SBOM is generated before, without the lock).
func (a *Attester) attachSBOM(ctx context.Context, digestRef string, doc []byte) (string, error) {
	unlock, err := a.referrers.Lock(ctx, digestRef)
	if err != nil {
		return "", fmt.Errorf("attach SBOM: %w", err)
	}
	defer unlock()
	return sbom.Attach(ctx, a.cfg.Registry, digestRef, a.cfg.Format, doc)
}

// Report is what Check found on an image.
type Report struct {
	// Image is the digest checked ("host/repo@sha256:...").
	Image string
	// KeyID is the fingerprint of the key that signed it.
	KeyID string
	// Provenance is the newest valid provenance statement's content.
	Provenance provenance.Parsed
	// SBOMs are the SBOM artifacts attached (not signed themselves; the
	// provenance and signature vouch for the image they describe).
	SBOMs []sbom.Attached
}

// Check verifies the image ref names: a signature by v for its digest
// and a SLSA v1 provenance attestation signed by v whose subject is that
// digest. A tag is resolved to its digest first, and the report names it.
func Check(ctx context.Context, reg signing.Registry, v *signing.Verifier, ref string) (Report, error) {
	reg, err := reuse(ctx, reg)
	if err != nil {
		return Report{}, err
	}
	c := signing.NewChecker(v, reg)
	digestRef, err := resolve(ctx, reg, ref)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Image: digestRef, KeyID: v.ID()}
	if err := c.Verify(ctx, digestRef); err != nil {
		return rep, fmt.Errorf("signature: %w", err)
	}
	sts, err := c.Attestations(ctx, digestRef, provenance.PredicateType)
	if err != nil {
		return rep, fmt.Errorf("provenance: %w", err)
	}
	p, err := provenance.Parse(sts[len(sts)-1])
	if err != nil {
		return rep, err
	}
	rep.Provenance = p
	if found, err := sbom.Find(ctx, reg, digestRef); err == nil {
		rep.SBOMs = found
	}
	return rep, nil
}

func resolve(ctx context.Context, reg signing.Registry, ref string) (string, error) {
	r, err := reg.Reference(ref)
	if err != nil {
		return "", err
	}
	if strings.Contains(r.Identifier(), ":") {
		return r.String(), nil
	}
	d, err := headDigest(ctx, reg, r)
	if err != nil {
		return "", err
	}
	return r.Context().String() + "@" + d, nil
}

// Policy says what happens to a child whose parent is not signed by
// cccp's key.
type Policy string

// The parent policies; Enforce is the default.
const (
	// Enforce fails the child's build.
	Enforce Policy = "enforce"
	// Warn logs and builds.
	Warn Policy = "warn"
	// Off does not check.
	Off Policy = "off"
)

// ParsePolicy reads a policy from configuration; "" is Enforce.
func ParsePolicy(s string) (Policy, error) {
	switch Policy(s) {
	case "", Enforce:
		return Enforce, nil
	case Warn, Off:
		return Policy(s), nil
	}
	return "", fmt.Errorf("parent signature policy %q: want enforce, warn or off", s)
}

// ParentCheck verifies the parents a child is built FROM.
type ParentCheck struct {
	checker *signing.Checker
	policy  Policy
	log     *slog.Logger
}

// NewParentCheck returns a ParentCheck with cccp's own key.
func NewParentCheck(v *signing.Verifier, reg signing.Registry, policy Policy, log *slog.Logger) *ParentCheck {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ParentCheck{checker: signing.NewChecker(v, reg), policy: policy, log: log}
}

// Verify checks the parent digestRef ("host/repo@sha256:...") before a
// child is built FROM it. An unsigned parent, or one signed by another
// key, is an error that says so, unless the policy is Warn or Off.
func (p *ParentCheck) Verify(ctx context.Context, digestRef string) error {
	if p.policy == Off {
		return nil
	}
	err := p.checker.Verify(ctx, digestRef)
	if err == nil {
		return nil
	}
	reason := "its signature could not be checked"
	switch {
	case errors.Is(err, signing.ErrUnsigned):
		reason = "it is not signed by cccp"
	case errors.Is(err, signing.ErrOtherKey):
		reason = "it is signed, but not by this cccp's key"
	}
	if p.policy == Warn {
		p.log.Warn("parent image not verified; building anyway (parent policy warn)", "parent", digestRef, "reason", reason, "err", err)
		return nil
	}
	return fmt.Errorf("parent %s: %s: %w", digestRef, reason, err)
}

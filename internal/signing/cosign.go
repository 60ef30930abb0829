package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/cccp-project/cccp/internal/keylock"
)

// Media types and annotations of cosign's layout.
const (
	SimpleSigningMediaType  types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType           types.MediaType = "application/vnd.dsse.envelope.v1+json"
	SignatureAnnotation                     = "dev.cosignproject.cosign/signature"
	PredicateTypeAnnotation                 = "predicateType"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
)

// Errors of verification. Both name what was checked in their wrapping.
var (
	// ErrUnsigned: the digest has no signature (or no attestation of the
	// asked type) at all.
	ErrUnsigned = errors.New("not signed")
	// ErrOtherKey: there are signatures, but none by the expected key
	// for this digest.
	ErrOtherKey = errors.New("not signed by the expected key")
)

// Registry is the registry access signing needs; *registry.Client has it.
type Registry interface {
	// Reference parses "host/repo:tag" or "host/repo@sha256:...".
	Reference(s string) (name.Reference, error)
	// RemoteOptions carry credentials and transport, with ctx.
	RemoteOptions(ctx context.Context) []remote.Option
}

// Signer signs digests and attaches attestations with a Key.
//
// Sign and Attest read cosign's artifact tag of the digest, add a layer
// and write the tag back. The Signer serialises that per tag, so
// deliveries of the same digest at once (two entries built from the
// same repository and commit, two workers, a retry) sign it once and
// keep every attestation. That holds within one process and one Signer:
// a process uses one Signer for all its deliveries, and a second cccp
// writing the same registry is not supported (its bbolt database has
// one writer, too); two of them could still race on a tag.
type Signer struct {
	key   *Key
	reg   Registry
	log   *slog.Logger
	locks keylock.Map
}

// NewSigner returns a Signer; log may be nil.
func NewSigner(key *Key, reg Registry, log *slog.Logger) *Signer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Signer{key: key, reg: reg, log: log}
}

// digestOf parses ref and resolves a tag to the digest it names now.
func digestOf(ctx context.Context, reg Registry, ref string) (name.Digest, error) {
	r, err := reg.Reference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	if d, ok := r.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(r, reg.RemoteOptions(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return r.Context().Digest(desc.Digest.String()), nil
}

// tagFor is cosign's tag for digest d with suffix ("sig", "att").
func tagFor(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + "." + suffix)
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// readArtifact reads the image at cosign's tag; nil when there is none.
func readArtifact(ctx context.Context, reg Registry, t name.Tag) (v1.Image, error) {
	img, err := remote.Image(t, reg.RemoteOptions(ctx)...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t, err)
	}
	return img, nil
}

// layer is one layer of a cosign artifact with its annotations.
type layer struct {
	data        []byte
	annotations map[string]string
}

func readLayers(img v1.Image, mt types.MediaType) ([]layer, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var out []layer
	for _, d := range m.Layers {
		if d.MediaType != mt {
			continue
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		// A signature layer is a small JSON document; a huge one is
		// not ours and is not read whole.
		data, err := io.ReadAll(io.LimitReader(rc, 4<<20))
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, layer{data: data, annotations: d.Annotations})
	}
	return out, nil
}

// appendLayer adds one layer to cosign's artifact at t (creating it).
func appendLayer(ctx context.Context, reg Registry, t name.Tag, base v1.Image, data []byte, mt types.MediaType, ann map[string]string) error {
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: static.NewLayer(data, mt), Annotations: ann})
	if err != nil {
		return fmt.Errorf("write %s: %w", t, err)
	}
	if err := remote.Write(t, img, reg.RemoteOptions(ctx)...); err != nil {
		return fmt.Errorf("write %s: %w", t, err)
	}
	return nil
}

// Sign signs the manifest ref names (a digest reference, or a tag that
// is resolved first) with cosign's simple-signing payload, in
// sha256-<hex>.sig of the same repository. A digest this key has already
// signed is left as it is, so each digest is signed once however often
// it is delivered; signatures by other keys are kept.
func (s *Signer) Sign(ctx context.Context, ref string) error {
	d, err := digestOf(ctx, s.reg, ref)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	t := tagFor(d, "sig")
	unlock, err := s.locks.Lock(ctx, t.Name())
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	defer unlock()
	base, err := readArtifact(ctx, s.reg, t)
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	if base != nil {
		if err := verifySignatures(base, s.key.Verifier(), d); err == nil {
			s.log.Debug("already signed", "image", d.String())
			return nil
		}
	}
	body, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	sig, err := s.key.sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	ann := map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	if err := appendLayer(ctx, s.reg, t, base, body, SimpleSigningMediaType, ann); err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	s.log.Info("signed", "image", d.String(), "key", s.key.ID())
	return nil
}

// Attest signs an in-toto statement (JSON) as a DSSE envelope and
// attaches it to the digest ref names in sha256-<hex>.att, annotated
// with predicateType, where `cosign verify-attestation` looks.
func (s *Signer) Attest(ctx context.Context, ref string, statement []byte, predicateType string) error {
	d, err := digestOf(ctx, s.reg, ref)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	env, err := dsse.WrapSigner(s.key.sv, InTotoPayloadType).SignMessage(bytes.NewReader(statement))
	if err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	t := tagFor(d, "att")
	unlock, err := s.locks.Lock(ctx, t.Name())
	if err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	defer unlock()
	base, err := readArtifact(ctx, s.reg, t)
	if err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	ann := map[string]string{SignatureAnnotation: "", PredicateTypeAnnotation: predicateType}
	if err := appendLayer(ctx, s.reg, t, base, env, DSSEMediaType, ann); err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	s.log.Info("attested", "image", d.String(), "predicateType", predicateType)
	return nil
}

// Checker verifies signatures and attestations against one public key.
type Checker struct {
	v   *Verifier
	reg Registry
}

// NewChecker returns a Checker for v.
func NewChecker(v *Verifier, reg Registry) *Checker { return &Checker{v: v, reg: reg} }

// Verify checks that the manifest ref names carries a cosign signature
// by the Checker's key for exactly that digest. It returns an error
// wrapping ErrUnsigned or ErrOtherKey, saying which image.
func (c *Checker) Verify(ctx context.Context, ref string) error {
	d, err := digestOf(ctx, c.reg, ref)
	if err != nil {
		return fmt.Errorf("verify signature: %w", err)
	}
	img, err := readArtifact(ctx, c.reg, tagFor(d, "sig"))
	if err != nil {
		return fmt.Errorf("verify signature of %s: %w", d, err)
	}
	if img == nil {
		return fmt.Errorf("%s: %w", d, ErrUnsigned)
	}
	if err := verifySignatures(img, c.v, d); err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	return nil
}

// verifySignatures returns nil when one simple-signing layer of img is
// signed by v for digest d.
func verifySignatures(img v1.Image, v *Verifier, d name.Digest) error {
	layers, err := readLayers(img, SimpleSigningMediaType)
	if err != nil {
		return fmt.Errorf("read signatures: %w", err)
	}
	if len(layers) == 0 {
		return ErrUnsigned
	}
	for _, l := range layers {
		sig, err := base64.StdEncoding.DecodeString(l.annotations[SignatureAnnotation])
		if err != nil || len(sig) == 0 {
			continue
		}
		if v.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(l.data)) != nil {
			continue
		}
		var p payload.SimpleContainerImage
		if json.Unmarshal(l.data, &p) != nil {
			continue
		}
		if p.Critical.Type == payload.CosignSignatureType && p.Critical.Image.DockerManifestDigest == d.DigestStr() {
			return nil
		}
	}
	return fmt.Errorf("%w (%d signatures, key %s)", ErrOtherKey, len(layers), v.id)
}

// Attestations returns the in-toto statements (JSON) attached to the
// digest ref names whose DSSE envelope the Checker's key signed, whose
// predicate type is predicateType and whose subject names the digest.
// None at all is ErrUnsigned; some, but none valid, is ErrOtherKey.
func (c *Checker) Attestations(ctx context.Context, ref, predicateType string) ([][]byte, error) {
	d, err := digestOf(ctx, c.reg, ref)
	if err != nil {
		return nil, fmt.Errorf("verify attestations: %w", err)
	}
	img, err := readArtifact(ctx, c.reg, tagFor(d, "att"))
	if err != nil {
		return nil, fmt.Errorf("verify attestations of %s: %w", d, err)
	}
	if img == nil {
		return nil, fmt.Errorf("%s: attestation: %w", d, ErrUnsigned)
	}
	layers, err := readLayers(img, DSSEMediaType)
	if err != nil {
		return nil, fmt.Errorf("verify attestations of %s: %w", d, err)
	}
	var out [][]byte
	seen := 0
	for _, l := range layers {
		if l.annotations[PredicateTypeAnnotation] != predicateType {
			continue
		}
		seen++
		if st, ok := verifyEnvelope(l.data, c.v, d, predicateType); ok {
			out = append(out, st)
		}
	}
	switch {
	case seen == 0:
		return nil, fmt.Errorf("%s: attestation %s: %w", d, predicateType, ErrUnsigned)
	case len(out) == 0:
		return nil, fmt.Errorf("%s: attestation %s: %w", d, predicateType, ErrOtherKey)
	}
	return out, nil
}

func verifyEnvelope(env []byte, v *Verifier, d name.Digest, predicateType string) ([]byte, bool) {
	if dsse.WrapVerifier(v.v).VerifySignature(bytes.NewReader(env), nil) != nil {
		return nil, false
	}
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
	}
	if json.Unmarshal(env, &e) != nil || e.PayloadType != InTotoPayloadType {
		return nil, false
	}
	st, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, false
	}
	var s struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(st, &s) != nil || s.PredicateType != predicateType {
		return nil, false
	}
	algo, hex, _ := strings.Cut(d.DigestStr(), ":")
	for _, sub := range s.Subject {
		if sub.Digest[algo] == hex {
			return st, true
		}
	}
	return nil, false
}

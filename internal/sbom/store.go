package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is the registry access the package needs; *registry.Client
// has it.
type Registry interface {
	Reference(s string) (name.Reference, error)
	RemoteOptions(ctx context.Context) []remote.Option
}

// emptyConfig is the OCI empty descriptor's content, the config of an
// artifact manifest that has nothing to configure.
var emptyConfig = []byte("{}")

const emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

// Attached is one SBOM found attached to an image.
type Attached struct {
	// Ref is the artifact manifest ("host/repo@sha256:...").
	Ref string
	// Format is the document's media type.
	Format Format
	// Created is when cccp attached it (from its annotation).
	Created time.Time
}

// Attach stores doc as an OCI artifact whose subject is the manifest
// digestRef names ("host/repo@sha256:..."), in the same repository, and
// lists it in the referrers tag (sha256-<hex>, an OCI image index) that
// oras and cosign read where the registry has no referrers API, as the
// embedded registry does not. It returns the artifact's reference.
func Attach(ctx context.Context, reg Registry, digestRef string, f Format, doc []byte) (string, error) {
	r, err := reg.Reference(digestRef)
	if err != nil {
		return "", fmt.Errorf("attach SBOM: %w", err)
	}
	d, ok := r.(name.Digest)
	if !ok {
		return "", fmt.Errorf("attach SBOM to %s: needs a digest reference", digestRef)
	}
	opts := reg.RemoteOptions(ctx)
	subject, err := remote.Head(d, opts...)
	if err != nil {
		return "", fmt.Errorf("attach SBOM to %s: %w", d, err)
	}
	repo := d.Context()
	for _, blob := range []struct {
		data []byte
		mt   types.MediaType
	}{{emptyConfig, emptyMediaType}, {doc, f.MediaType()}} {
		if err := remote.WriteLayer(repo, static.NewLayer(blob.data, blob.mt), opts...); err != nil {
			return "", fmt.Errorf("attach SBOM to %s: upload: %w", d, err)
		}
	}
	m := manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(f.MediaType()),
		Config:        descriptor(emptyConfig, emptyMediaType, nil),
		Layers: []v1.Descriptor{descriptor(doc, f.MediaType(), map[string]string{
			"org.opencontainers.image.title": "sbom" + f.Ext(),
		})},
		Subject: &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: map[string]string{
			"org.opencontainers.image.created": time.Now().UTC().Format(time.RFC3339),
			"dev.cccp.sbom.format":             string(f),
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	dst := repo.Digest(h.String())
	// go-containerregistry updates the referrers tag for a manifest with
	// a subject.
	if err := remote.Put(dst, rawManifest{raw, types.OCIManifestSchema1}, opts...); err != nil {
		return "", fmt.Errorf("attach SBOM to %s: %w", d, err)
	}
	return dst.String(), nil
}

type manifest struct {
	SchemaVersion int64             `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func descriptor(data []byte, mt types.MediaType, ann map[string]string) v1.Descriptor {
	h, n, _ := v1.SHA256(bytes.NewReader(data))
	return v1.Descriptor{MediaType: mt, Digest: h, Size: n, Annotations: ann}
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// ErrNone is returned when an image has no SBOM attached.
var ErrNone = errors.New("no SBOM attached")

// Find lists the SBOMs attached to the manifest digestRef names, newest
// first, through the referrers API or the referrers tag.
func Find(ctx context.Context, reg Registry, digestRef string) ([]Attached, error) {
	r, err := reg.Reference(digestRef)
	if err != nil {
		return nil, fmt.Errorf("find SBOM: %w", err)
	}
	d, ok := r.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("find SBOM of %s: needs a digest reference", digestRef)
	}
	idx, err := remote.Referrers(d, reg.RemoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("find SBOM of %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("find SBOM of %s: %w", d, err)
	}
	var out []Attached
	for _, m := range im.Manifests {
		f, ok := formatOf(types.MediaType(m.ArtifactType))
		if !ok {
			continue
		}
		created, _ := time.Parse(time.RFC3339, m.Annotations["org.opencontainers.image.created"])
		out = append(out, Attached{Ref: d.Context().Digest(m.Digest.String()).String(), Format: f, Created: created})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Read returns the document of the artifact a (from Find).
func Read(ctx context.Context, reg Registry, a Attached) ([]byte, error) {
	r, err := reg.Reference(a.Ref)
	if err != nil {
		return nil, fmt.Errorf("read SBOM: %w", err)
	}
	opts := reg.RemoteOptions(ctx)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("read SBOM %s: %w", a.Ref, err)
	}
	var m manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("read SBOM %s: %w", a.Ref, err)
	}
	for _, l := range m.Layers {
		if l.MediaType != a.Format.MediaType() {
			continue
		}
		layer, err := remote.Layer(r.Context().Digest(l.Digest.String()), opts...)
		if err != nil {
			return nil, fmt.Errorf("read SBOM %s: %w", a.Ref, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, fmt.Errorf("read SBOM %s: %w", a.Ref, err)
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, maxDoc))
		if err != nil {
			return nil, fmt.Errorf("read SBOM %s: %w", a.Ref, err)
		}
		return data, nil
	}
	return nil, fmt.Errorf("read SBOM %s: %w", a.Ref, ErrNone)
}

// maxDoc bounds what is read of one SBOM document.
const maxDoc = 64 << 20

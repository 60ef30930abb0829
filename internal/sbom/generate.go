package sbom

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Generator makes SBOM documents of images in a registry.
type Generator struct {
	reg Registry
	// Tool names the generator in the document ("cccp-v1.2.3").
	tool string
	now  func() time.Time
}

// NewGenerator returns a Generator reading images through reg; version
// is cccp's, written into each document as its creator.
func NewGenerator(reg Registry, version string) *Generator {
	return &Generator{reg: reg, tool: "cccp-" + version, now: time.Now}
}

// Generate pulls the image digestRef names ("host/repo@sha256:...") and
// returns its SBOM in format f.
func (g *Generator) Generate(ctx context.Context, digestRef string, f Format) ([]byte, error) {
	r, err := g.reg.Reference(digestRef)
	if err != nil {
		return nil, fmt.Errorf("SBOM: %w", err)
	}
	d, ok := r.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("SBOM of %s: needs a digest reference", digestRef)
	}
	img, err := remote.Image(d, g.reg.RemoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", d, err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	pkgs, osID, err := catalog(tar.NewReader(rc))
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s: read the file system: %w", d, err)
	}
	pkgs = dedupe(pkgs)
	switch f {
	case CycloneDX:
		return g.cyclonedx(d, osID, pkgs)
	case SPDX, "":
		return g.spdx(d, pkgs)
	}
	return nil, fmt.Errorf("SBOM of %s: unknown format %q", d, f)
}

// dedupe keeps one entry per package URL and location, sorted.
func dedupe(in []found) []found {
	seen := map[string]bool{}
	var out []found
	for _, p := range in {
		k := p.PURL + "|" + p.Location
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PURL != out[j].PURL {
			return out[i].PURL < out[j].PURL
		}
		return out[i].Location < out[j].Location
	})
	return out
}

func spdxID(s string) common.ElementID {
	sum := sha256.Sum256([]byte(s))
	return common.ElementID("Package-" + hex.EncodeToString(sum[:8]))
}

func (g *Generator) spdx(d name.Digest, pkgs []found) ([]byte, error) {
	rootID := common.ElementID("DocumentRoot-Image-" + strings.NewReplacer("/", "-", ":", "-", ".", "-").Replace(d.Context().RepositoryStr()))
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      d.String(),
		DocumentNamespace: "https://cccp.invalid/spdx/" + strings.ReplaceAll(d.String(), "@", "/"),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: g.tool}},
			Created:  g.now().UTC().Format(time.RFC3339),
		},
	}
	root := &spdx.Package{
		PackageName:             d.Context().String(),
		PackageSPDXIdentifier:   rootID,
		PackageVersion:          d.DigestStr(),
		PackageDownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose:   "CONTAINER",
		PackageChecksums:        []common.Checksum{{Algorithm: common.SHA256, Value: strings.TrimPrefix(d.DigestStr(), "sha256:")}},
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL,
			Locator: "pkg:oci/" + lastPart(d.Context().RepositoryStr()) + "@" + strings.ReplaceAll(d.DigestStr(), ":", "%3A") +
				"?repository_url=" + d.Context().String(),
		}},
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(rootID)), Relationship: common.TypeRelationshipDescribe,
	})
	for _, p := range pkgs {
		id := spdxID(p.PURL + "|" + p.Location)
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: "NOASSERTION",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
			PackageSourceInfo:       "found in " + p.Location,
			PackageExternalReferences: []*spdx.PackageExternalReference{{
				Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p.PURL,
			}},
		})
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(rootID)), RefB: common.MakeDocElementID("", string(id)), Relationship: common.TypeRelationshipContains,
		})
	}
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf); err != nil {
		return nil, fmt.Errorf("SBOM of %s: write SPDX: %w", d, err)
	}
	return buf.Bytes(), nil
}

func lastPart(s string) string { return s[strings.LastIndex(s, "/")+1:] }

func (g *Generator) cyclonedx(d name.Digest, osID string, pkgs []found) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidFrom(d.String())
	bom.Metadata = &cdx.Metadata{
		Timestamp: g.now().UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "cccp", Version: strings.TrimPrefix(g.tool, "cccp-")}}},
		Component: &cdx.Component{
			BOMRef: d.String(), Type: cdx.ComponentTypeContainer, Name: d.Context().String(), Version: d.DigestStr(),
		},
	}
	var comps []cdx.Component
	for _, p := range pkgs {
		comps = append(comps, cdx.Component{
			BOMRef: p.PURL + "#" + p.Location, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL,
			Properties: &[]cdx.Property{{Name: "cccp:location", Value: p.Location}},
		})
	}
	bom.Components = &comps
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	if err := enc.Encode(bom); err != nil {
		return nil, fmt.Errorf("SBOM of %s: write CycloneDX: %w", d, err)
	}
	_ = osID
	return buf.Bytes(), nil
}

// uuidFrom makes a stable UUID-shaped serial from s (the same image gets
// the same serial number).
func uuidFrom(s string) string {
	h := sha256.Sum256([]byte(s))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

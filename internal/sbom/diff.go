package sbom

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Package is one package an SBOM lists.
type Package struct {
	Name    string
	Version string
	// Type is the package's kind from its purl ("apk", "deb", "rpm",
	// "golang", "binary"...), "" when the document gives none.
	Type string
}

func (p Package) key() string { return p.Type + "/" + p.Name }

// Packages reads the packages of an SPDX or CycloneDX JSON document,
// sorted by type, name and version. The document describing the image
// itself (SPDX's root package for the image) is not a package of it.
func Packages(doc []byte) ([]Package, error) {
	var d struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			SPDXID       string `json:"SPDXID"`
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			PrimaryPurp  string `json:"primaryPackagePurpose"`
			ExternalRefs []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			Version string `json:"version"`
			PURL    string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("read SBOM: %w", err)
	}
	var out []Package
	switch {
	case strings.HasPrefix(d.SPDXVersion, "SPDX-"):
		for _, p := range d.Packages {
			purl := ""
			for _, r := range p.ExternalRefs {
				if r.Type == "purl" {
					purl = r.Locator
				}
			}
			if purl == "" && (p.PrimaryPurp == "CONTAINER" || strings.HasPrefix(p.SPDXID, "SPDXRef-DocumentRoot")) {
				continue
			}
			out = append(out, Package{Name: p.Name, Version: p.VersionInfo, Type: purlType(purl)})
		}
	case d.BOMFormat == "CycloneDX":
		for _, c := range d.Components {
			if c.Type == "file" || c.Type == "operating-system" {
				continue
			}
			out = append(out, Package{Name: c.Name, Version: c.Version, Type: purlType(c.PURL)})
		}
	default:
		return nil, fmt.Errorf("read SBOM: neither SPDX nor CycloneDX JSON")
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].key() != out[j].key() {
			return out[i].key() < out[j].key()
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// purlType returns the type of a package URL ("pkg:apk/alpine/busybox@1"
// → "apk").
func purlType(purl string) string {
	rest, ok := strings.CutPrefix(purl, "pkg:")
	if !ok {
		return ""
	}
	t, _, _ := strings.Cut(rest, "/")
	return t
}

// Change is a package whose version differs between two SBOMs.
type Change struct {
	Name, Type string
	From, To   string
}

// Diff is what changed from one SBOM to the next.
type Diff struct {
	Added, Removed []Package
	// Upgraded lists packages present in both with another version
	// (versions are not ordered, so a downgrade is listed here too).
	Upgraded []Change
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Upgraded) == 0 }

// Compare returns what changed from old to new. Packages are matched by
// type and name; a name listed in several versions on one side (two
// copies of a library) is compared as its set of versions.
func Compare(old, new []Package) Diff {
	versions := func(ps []Package) map[string][]Package {
		m := map[string][]Package{}
		for _, p := range ps {
			m[p.key()] = append(m[p.key()], p)
		}
		for _, vs := range m {
			sort.Slice(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
		}
		return m
	}
	o, n := versions(old), versions(new)
	var d Diff
	for k, np := range n {
		op, ok := o[k]
		if !ok {
			d.Added = append(d.Added, np...)
			continue
		}
		if sameVersions(op, np) {
			continue
		}
		if len(op) == 1 && len(np) == 1 {
			d.Upgraded = append(d.Upgraded, Change{Name: np[0].Name, Type: np[0].Type, From: op[0].Version, To: np[0].Version})
			continue
		}
		d.Added = append(d.Added, minus(np, op)...)
		d.Removed = append(d.Removed, minus(op, np)...)
	}
	for k, op := range o {
		if _, ok := n[k]; !ok {
			d.Removed = append(d.Removed, op...)
		}
	}
	byKey := func(ps []Package) {
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].key() != ps[j].key() {
				return ps[i].key() < ps[j].key()
			}
			return ps[i].Version < ps[j].Version
		})
	}
	byKey(d.Added)
	byKey(d.Removed)
	sort.Slice(d.Upgraded, func(i, j int) bool {
		return d.Upgraded[i].Type+"/"+d.Upgraded[i].Name < d.Upgraded[j].Type+"/"+d.Upgraded[j].Name
	})
	return d
}

func sameVersions(a, b []Package) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Version != b[i].Version {
			return false
		}
	}
	return true
}

// minus returns the packages of a whose version b lacks.
func minus(a, b []Package) []Package {
	have := map[string]bool{}
	for _, p := range b {
		have[p.Version] = true
	}
	var out []Package
	for _, p := range a {
		if !have[p.Version] {
			out = append(out, p)
		}
	}
	return out
}

package sbom

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Format is an SBOM document format.
type Format string

// The formats cccp writes. SPDX is the default.
const (
	SPDX      Format = "spdx-json"
	CycloneDX Format = "cyclonedx-json"
)

// ParseFormat reads a format name from configuration; "" is SPDX.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", SPDX:
		return SPDX, nil
	case CycloneDX:
		return CycloneDX, nil
	}
	return "", fmt.Errorf("SBOM format %q: want %q or %q", s, SPDX, CycloneDX)
}

// MediaType is the document's media type, also the artifact type of the
// manifest that carries it.
func (f Format) MediaType() types.MediaType {
	if f == CycloneDX {
		return "application/vnd.cyclonedx+json"
	}
	return "application/spdx+json"
}

// Ext is the file name extension for a download.
func (f Format) Ext() string {
	if f == CycloneDX {
		return ".cdx.json"
	}
	return ".spdx.json"
}

func formatOf(mt types.MediaType) (Format, bool) {
	for _, f := range []Format{SPDX, CycloneDX} {
		if f.MediaType() == mt {
			return f, true
		}
	}
	return "", false
}

// Package sbom makes, stores and compares the software bill of materials
// of a delivered image.
//
// A document (SPDX 2.3 JSON by default, CycloneDX JSON as an option) is
// stored in the image's own repository as an OCI artifact whose subject is
// the image digest: an OCI image manifest with artifactType the document's
// media type, the empty config and the document as its one layer. The
// embedded registry (distribution v3) has no referrers API, so the
// artifact is also listed in the referrers tag of the OCI distribution
// spec, sha256-<hex>: an OCI image index that `oras discover` and cosign
// read the same way. Compare tells what changed between two deliveries.
package sbom

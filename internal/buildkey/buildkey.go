// Package buildkey computes a build's key: one digest over everything a
// build of an index entry depends on (the commit, the build context's and
// the Dockerfile's content, the build arguments, every base image's digest
// and cccp's own stage configuration). Two builds with the same key would
// produce the same image, so the pipeline skips a build whose key equals
// that of the entry's last delivered run.
//
// The package is pure: callers gather the inputs; Sum only hashes them.
package buildkey

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// version is hashed with every key; a change of what goes into a key (or
// of its encoding) bumps it, so old keys never match new ones.
const version = "cccp-buildkey-v1"

// ErrIncomplete is returned when an input that the image depends on is not
// known (a base image whose digest could not be resolved): such a build has
// no key and always builds.
var ErrIncomplete = errors.New("build inputs incomplete")

// Base is one image a build starts FROM, with the digest it resolves to.
type Base struct {
	Image  string // as written after FROM
	Digest string // the manifest digest it resolves to; required
}

// Inputs are everything a build depends on.
type Inputs struct {
	GitURL string
	Commit string // the resolved commit; required
	// ContextTree and Dockerfile are the git object IDs of the build
	// context folder and of the Dockerfile at Commit ("" when not
	// looked up: Commit alone then stands for the content).
	ContextTree string
	Dockerfile  string
	// Entry are the index entry's fields that change what is built or
	// delivered (git-path, target-file, build-context, prebuild-*,
	// depends-on, tags), by name.
	Entry map[string]string
	// BuildArgs are the build arguments passed to the build.
	BuildArgs map[string]string
	// Bases are the FROM images in Dockerfile order.
	Bases []Base
	// Stage is cccp's own configuration that changes the output or the
	// verdict: backend names and settings, blocking checks, signing.
	Stage map[string]string
}

// Sum returns the key of in ("sha256:<hex>"). Map order does not matter;
// the order of Bases does.
func Sum(in Inputs) (string, error) {
	if in.Commit == "" {
		return "", fmt.Errorf("build key: %w: no commit", ErrIncomplete)
	}
	for i, b := range in.Bases {
		if b.Image == "" || b.Digest == "" {
			return "", fmt.Errorf("build key: %w: base %d (%q) has no digest", ErrIncomplete, i+1, b.Image)
		}
	}
	// encoding/json writes map keys sorted, so the encoding is canonical.
	doc := struct {
		V  string
		In Inputs
	}{version, in}
	doc.In.Bases = slices.Clone(in.Bases)
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("build key: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

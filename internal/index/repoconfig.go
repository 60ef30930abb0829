package index

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cccp-project/cccp/internal/safefs"
)

// RepoConfigNames are the names of the per-repository file, in the order
// they are looked for.
var RepoConfigNames = []string{"cccp.yaml", "cccp.yml", ".cccp.yaml", ".cccp.yml"}

// RepoConfig is the per-repository `cccp.yaml`, next to the Dockerfile.
type RepoConfig struct {
	// File is the path read; "" when the folder has no cccp.yaml (then
	// every field has its default).
	File string `json:"file,omitempty"`

	JobID string `json:"job-id"`
	// TestSkip skips the user's test script (never cccp's own checks).
	// When test-skip is not written it is true unless a test-script is
	// given: the original defaulted to true, which silently ignored test
	// scripts whose authors forgot `test-skip: False`.
	TestSkip   bool   `json:"test-skip"`
	TestScript string `json:"test-script,omitempty"`
	// TestNetwork gives the container under test (and only it) a network
	// of its own (rootless slirp4netns, no access to the host's loopback);
	// without it the container runs with --network none.
	TestNetwork    bool   `json:"test-network,omitempty"`
	BuildScript    string `json:"build-script,omitempty"`
	DeliveryScript string `json:"delivery-script,omitempty"`
	DesiredTag     string `json:"desired-tag,omitempty"`
	// The original's keys that it documented as unused; kept so files
	// load, not acted on.
	NuleculeFile   string     `json:"nulecule-file,omitempty"`
	DockerIndex    bool       `json:"docker-index,omitempty"`
	CustomDelivery bool       `json:"custom-delivery,omitempty"`
	LocalDelivery  bool       `json:"local-delivery,omitempty"`
	Upstreams      []Upstream `json:"upstreams,omitempty"`

	FieldPos map[string]Pos `json:"-"`
}

// Upstream is an item of the original's `Upstreams` list.
type Upstream struct {
	Ref string `json:"ref,omitempty"`
	URL string `json:"url,omitempty"`
}

// LoadRepoConfig reads the first of cccp.yaml, cccp.yml, .cccp.yaml,
// .cccp.yml in dir. A missing file is not an error: the result has File ""
// and defaults. Findings cover YAML syntax, types and unknown keys
// (warnings); the error is for files that cannot be read, or that are not
// regular files beneath dir (a symlink out of it, a device).
func LoadRepoConfig(dir string) (*RepoConfig, []Finding, error) {
	cfg := &RepoConfig{TestSkip: true, FieldPos: map[string]Pos{}}
	for _, n := range RepoConfigNames {
		f := filepath.Join(dir, n)
		data, err := safefs.ReadFile(dir, n, DefaultMaxFileSize)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case errors.Is(err, safefs.ErrNotRegular):
			if st, serr := os.Stat(f); serr == nil && st.IsDir() {
				continue
			}
			return nil, nil, fmt.Errorf("read repository config %s: %w", n, err)
		case errors.Is(err, safefs.ErrTooLarge):
			cfg.File = f
			return cfg, []Finding{errorf(Pos{File: f}, "size", "file is larger than %d bytes; not read", int64(DefaultMaxFileSize))}, nil
		case err != nil:
			// A symlink out of the folder, a device: refused, never read.
			return nil, nil, fmt.Errorf("read repository config %s: %w", n, err)
		}
		cfg.File = f
		return cfg, parseRepoConfig(cfg, f, data), nil
	}
	return cfg, nil, nil
}

// ParseRepoConfig parses cccp.yaml bytes as if read from name.
func ParseRepoConfig(name string, data []byte) (*RepoConfig, []Finding) {
	cfg := &RepoConfig{File: name, TestSkip: true, FieldPos: map[string]Pos{}}
	return cfg, parseRepoConfig(cfg, name, data)
}

func parseRepoConfig(cfg *RepoConfig, file string, data []byte) []Finding {
	root, fs := parseYAML(file, data)
	if root == nil || isNull(root) {
		return fs
	}
	if root.Kind != yaml.MappingNode {
		return append(fs, errorf(posOf(file, root), "type", "cccp.yaml must be a mapping, got %s", kindName(root)))
	}
	strs := map[string]*string{
		"job-id": &cfg.JobID, "test-script": &cfg.TestScript, "build-script": &cfg.BuildScript,
		"delivery-script": &cfg.DeliveryScript, "desired-tag": &cfg.DesiredTag, "nulecule-file": &cfg.NuleculeFile,
	}
	bools := map[string]*bool{
		"test-skip": &cfg.TestSkip, "test-network": &cfg.TestNetwork, "docker-index": &cfg.DockerIndex,
		"custom-delivery": &cfg.CustomDelivery, "local-delivery": &cfg.LocalDelivery,
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, raw := root.Content[i], root.Content[i+1]
		kp := posOf(file, k)
		v := deref(raw)
		if v == nil {
			fs = append(fs, errorf(kp, "yaml", "%q: alias chain too deep", k.Value))
			continue
		}
		cfg.FieldPos[k.Value] = kp
		if dst, ok := strs[k.Value]; ok {
			switch {
			case isNull(v):
			case v.Kind == yaml.ScalarNode:
				*dst = v.Value
			default:
				fs = append(fs, errorf(kp, "type", "%s must be a string, got %s", k.Value, kindName(v)))
			}
			continue
		}
		if dst, ok := bools[k.Value]; ok {
			if isNull(v) {
				continue
			}
			b, ok := parseBool(v)
			if !ok {
				fs = append(fs, errorf(kp, "type", "%s must be true or false, got %q", k.Value, v.Value))
				continue
			}
			*dst = b
			continue
		}
		if k.Value == "Upstreams" || k.Value == "upstreams" {
			fs = append(fs, parseUpstreams(cfg, file, v)...)
			continue
		}
		fs = append(fs, warnf(kp, "unknown-field", "unknown key %q in cccp.yaml (ignored)", k.Value))
	}
	if _, set := cfg.FieldPos["test-skip"]; !set || isNullField(root, "test-skip") {
		cfg.TestSkip = cfg.TestScript == ""
	}
	return fs
}

func isNullField(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return isNull(deref(m.Content[i+1]))
		}
	}
	return false
}

// parseBool accepts YAML booleans and the strings the original's Python
// read as such (True/False, yes/no, on/off, 1/0), in any case.
func parseBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(n.Value)) {
	case "true", "yes", "on", "1", "y":
		return true, true
	case "false", "no", "off", "0", "n":
		return false, true
	}
	return false, false
}

func parseUpstreams(cfg *RepoConfig, file string, v *yaml.Node) []Finding {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return []Finding{errorf(posOf(file, v), "type", "Upstreams must be a list, got %s", kindName(v))}
	}
	var fs []Finding
	for _, it := range v.Content {
		m := deref(it)
		if m == nil || m.Kind != yaml.MappingNode {
			fs = append(fs, errorf(posOf(file, it), "type", "an Upstreams item must be a mapping"))
			continue
		}
		var u Upstream
		for i := 0; i+1 < len(m.Content); i += 2 {
			val := deref(m.Content[i+1])
			if val == nil || isNull(val) || val.Kind != yaml.ScalarNode {
				continue
			}
			switch m.Content[i].Value {
			case "ref":
				u.Ref = val.Value
			case "url":
				u.URL = val.Value
			default:
				fs = append(fs, warnf(posOf(file, m.Content[i]), "unknown-field", "unknown key %q in Upstreams (ignored)", m.Content[i].Value))
			}
		}
		if u != (Upstream{}) {
			cfg.Upstreams = append(cfg.Upstreams, u)
		}
	}
	return fs
}

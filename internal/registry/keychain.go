package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// DefaultAuthFiles lists the standard container auth files in the order
// podman, buildah and skopeo consult them: $REGISTRY_AUTH_FILE,
// ${XDG_RUNTIME_DIR}/containers/auth.json, $XDG_CONFIG_HOME (or
// ~/.config)/containers/auth.json, $DOCKER_CONFIG/config.json and
// ~/.docker/config.json. Files that do not exist are skipped when read.
func DefaultAuthFiles() []string {
	var files []string
	add := func(p string) {
		if p != "" {
			files = append(files, p)
		}
	}
	add(os.Getenv("REGISTRY_AUTH_FILE"))
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		add(filepath.Join(d, "containers", "auth.json"))
	}
	home, _ := os.UserHomeDir()
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		add(filepath.Join(d, "containers", "auth.json"))
	} else if home != "" {
		add(filepath.Join(home, ".config", "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		add(filepath.Join(d, "config.json"))
	}
	if home != "" {
		add(filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// keychain resolves credentials: explicit per-host ones first, then the
// auth files in order (within a file the most specific key wins:
// host/ns/repo before host/ns before host), then go-containerregistry's
// default keychain for docker credential helpers. Files are read at each
// resolution, so a login made while cccp runs is seen.
type keychain struct {
	explicit map[string]Credentials
	files    []string
}

func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := normalHost(target.RegistryStr())
	if c, ok := k.explicit[host]; ok {
		return &authn.Basic{Username: c.User, Password: c.Password}, nil
	}
	keys := candidateKeys(target)
	for _, f := range k.files {
		auths, err := readAuthFile(f)
		if err != nil {
			return nil, err
		}
		for _, key := range keys {
			if cfg, ok := auths[key]; ok {
				return authn.FromConfig(cfg), nil
			}
		}
	}
	return authn.DefaultKeychain.Resolve(target)
}

// candidateKeys lists the auth-file keys that may hold target's
// credentials, most specific first.
func candidateKeys(target authn.Resource) []string {
	host := normalHost(target.RegistryStr())
	full := target.String()
	var keys []string
	if rest, ok := strings.CutPrefix(full, target.RegistryStr()+"/"); ok {
		parts := strings.Split(rest, "/")
		for i := len(parts); i > 0; i-- {
			keys = append(keys, host+"/"+strings.Join(parts[:i], "/"))
		}
	}
	return append(keys, host)
}

// normalHost maps the spellings of a registry in auth files to one key.
func normalHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/v1"), "/v2")
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	if rest, ok := strings.CutPrefix(s, "index.docker.io/"); ok {
		return "docker.io/" + rest
	}
	return s
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// readAuthFile reads the "auths" of a docker config.json or containers
// auth.json; a missing file has none. Errors name the file, never its
// content.
func readAuthFile(path string) (map[string]authn.AuthConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read auth file: %w", err)
	}
	var doc struct {
		Auths map[string]authEntry `json:"auths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("auth file %s is not valid JSON", path)
	}
	out := make(map[string]authn.AuthConfig, len(doc.Auths))
	for key, e := range doc.Auths {
		cfg := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("auth file %s: entry %q: auth is not base64", path, key)
			}
			u, p, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("auth file %s: entry %q: auth is not user:password", path, key)
			}
			cfg.Username, cfg.Password = u, p
		}
		if cfg == (authn.AuthConfig{}) {
			continue // an entry kept only for a credential helper
		}
		out[normalHost(key)] = cfg
	}
	return out, nil
}

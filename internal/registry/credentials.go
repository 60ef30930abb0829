package registry

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Credentials are a user name and password for HTTP basic auth.
type Credentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// String hides the password, so Credentials can be printed safely.
func (c Credentials) String() string { return c.User + ":***" }

// LogValue hides the password from slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// loadOrCreateCredentials reads the push credentials at path, or makes new
// random ones and writes them with mode 0600. A file readable by others is
// narrowed to 0600.
func loadOrCreateCredentials(path, user string, log *slog.Logger) (Credentials, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var c Credentials
		if err := json.Unmarshal(b, &c); err != nil || c.User == "" || c.Password == "" {
			return Credentials{}, fmt.Errorf("read push credentials %s: malformed file (remove it to generate new credentials)", path)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return Credentials{}, fmt.Errorf("restrict push credentials %s: %w", path, err)
			}
			log.Warn("push credentials file was readable by others; now 0600", "path", path)
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return Credentials{}, fmt.Errorf("read push credentials: %w", err)
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Credentials{}, fmt.Errorf("generate push credentials: %w", err)
	}
	c := Credentials{User: user, Password: base64.RawURLEncoding.EncodeToString(raw)}
	b, err = json.Marshal(c)
	if err != nil {
		return Credentials{}, fmt.Errorf("encode push credentials: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	// CreateTemp makes the file 0600 already; say so explicitly anyway.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Credentials{}, fmt.Errorf("write push credentials: %w", err)
	}
	log.Info("generated push credentials", "path", path, "user", user)
	return c, nil
}

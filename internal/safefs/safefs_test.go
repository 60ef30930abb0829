package safefs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFile(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "Dockerfile"), []byte("FROM x\n"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "big"), make([]byte, 101), 0o644))
	must(os.Symlink("../Dockerfile", filepath.Join(root, "sub", "inside")))
	must(os.Symlink(secret, filepath.Join(root, "abs-out")))
	must(os.Symlink("../../../../../../../../.."+secret, filepath.Join(root, "rel-out")))
	must(os.Symlink("/dev/zero", filepath.Join(root, "zero")))
	must(os.Symlink("/", filepath.Join(root, "slash")))

	for _, tc := range []struct {
		name, path string
		want       error
	}{
		{"a file", "Dockerfile", nil},
		{"a symlink inside", "sub/inside", nil},
		{"an absolute path inside", filepath.Join(root, "Dockerfile"), nil},
		{"an absolute symlink out", "abs-out", ErrEscapes},
		{"a relative symlink out", "rel-out", ErrEscapes},
		{"dot-dot", "../x", ErrEscapes},
		{"an absolute path outside", secret, ErrEscapes},
		{"a symlink to /dev/zero", "zero", ErrEscapes},
		{"through a symlink to /", "slash" + secret, ErrEscapes},
		{"a folder", "sub", ErrNotRegular},
		{"too large", "big", ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := ReadFile(root, tc.path, 100)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFile(%q) = %q, %v; want %v", tc.path, data, err, tc.want)
			}
			if tc.want == nil && string(data) != "FROM x\n" {
				t.Fatalf("ReadFile(%q) = %q", tc.path, data)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "ctx"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"to-root": "/", "to-ctx": "ctx", "up": ".."} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	real, _ := filepath.EvalSymlinks(root)
	for _, tc := range []struct {
		path string
		want string
		err  error
	}{
		{"ctx", filepath.Join(real, "ctx"), nil},
		{"to-ctx", filepath.Join(real, "ctx"), nil},
		{"./", real, nil},
		{"to-root", "", ErrEscapes},
		{"up", "", ErrEscapes},
		{"ctx/../..", "", ErrEscapes},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := Resolve(root, tc.path)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q, %v", tc.path, got, err, tc.want, tc.err)
			}
		})
	}
}

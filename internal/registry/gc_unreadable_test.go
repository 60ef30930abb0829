package registry

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestGCAbortsOnUnreadableManifest: when a manifest GC must read to know
// what is in use cannot be read or parsed, GC deletes nothing (the blobs
// that manifest names would look unused) and says which file and why.
func TestGCAbortsOnUnreadableManifest(t *testing.T) {
	for _, tc := range []struct {
		name string
		// spoil makes one file unreadable and returns its path.
		spoil func(t *testing.T, e *Embedded, keep string) string
		why   string
	}{
		{"malformed manifest", func(t *testing.T, e *Embedded, keep string) string {
			p := blobData(e, keep)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeAged(t, p, b[:len(b)/2]) // cut in half: no longer JSON
			return p
		}, "not a manifest"},
		{"manifest larger than any manifest", func(t *testing.T, e *Embedded, keep string) string {
			p := blobData(e, keep)
			writeAged(t, p, []byte(strings.Repeat(" ", maxManifest+1)))
			return p
		}, "larger than"},
		{"tag link without a digest", func(t *testing.T, e *Embedded, _ string) string {
			p := filepath.Join(e.storageDir(), v2Root, "repositories", "gc", "keep", "_manifests", "tags", "v1", "current", "link")
			writeAged(t, p, []byte("garbage"))
			return p
		}, "no digest"},
		{"read error", func(t *testing.T, e *Embedded, keep string) string {
			p := blobData(e, keep)
			// A disk that fails to read this one file (root ignores
			// chmod 000, so the failure is injected).
			e.gcRead = func(path string, limit int64) ([]byte, error) {
				if path == p {
					return nil, &fs.PathError{Op: "read", Path: path, Err: syscall.EIO}
				}
				return readSmall(path, limit)
			}
			return p
		}, "input/output error"},
		{"manifest data missing", func(t *testing.T, e *Embedded, keep string) string {
			p := blobData(e, keep)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs lockedBuffer
			e, err := Start(t.Context(), Config{Dir: t.TempDir(), Logger: slogTo(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close(t.Context()) })
			auth := pushAuth(e)
			keep := push(t, e.Host()+"/gc/keep:v1", randomImage(t, 2048, 2), auth)
			// Garbage a successful GC would delete: an untagged image.
			push(t, e.Host()+"/gc/gone:v1", randomImage(t, 2048, 2), auth)
			push(t, e.Host()+"/gc/gone:v1", randomImage(t, 2048, 1), auth)
			ageStorage(t, e)
			path := tc.spoil(t, e, keep)
			before := storageFiles(t, e)

			for _, dry := range []bool{true, false} {
				s, err := e.GC(t.Context(), dry)
				if err == nil {
					t.Fatalf("GC (dry run %v) succeeded with %s spoilt: %+v", dry, path, s)
				}
				if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.why) {
					t.Errorf("GC error %q does not name %s and %q", err, path, tc.why)
				}
				if s.BlobsDeleted+s.ManifestsDeleted+s.LayerLinksDeleted != 0 {
					t.Errorf("GC reports deletions although it aborted: %+v", s)
				}
			}
			if after := storageFiles(t, e); !slices.Equal(before, after) {
				t.Errorf("GC deleted files although it aborted:\n%s", strings.Join(missing(before, after), "\n"))
			}
			if got := e.GCAborts(); got != 2 {
				t.Errorf("GCAborts() = %d, want 2", got)
			}
			var metrics strings.Builder
			if err := e.WriteMetrics(&metrics); err != nil || !strings.Contains(metrics.String(), "\ncccp_registry_gc_aborted_total 2\n") {
				t.Errorf("metrics %q (%v) do not count the two aborted collections", metrics.String(), err)
			}
			if !strings.Contains(logs.String(), "garbage collection aborted") {
				t.Errorf("no log line for the aborted collection:\n%s", logs.String())
			}
		})
	}
}

func blobData(e *Embedded, digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(e.storageDir(), v2Root, "blobs", "sha256", hex[:2], hex, "data")
}

// writeAged replaces the file at p with b, an hour old like the rest.
func writeAged(t *testing.T, p string, b []byte) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// storageFiles lists every file under the registry's storage, sorted.
func storageFiles(t *testing.T, e *Embedded) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(e.storageDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func missing(before, after []string) []string {
	var out []string
	for _, p := range before {
		if !slices.Contains(after, p) {
			out = append(out, p)
		}
	}
	return out
}

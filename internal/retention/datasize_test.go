package retention

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSizer(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, n int) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cccp.db", 100)
	write("logs/1/build.log", 10)
	write("logs/2/test.log", 20)
	write("registry/storage/docker/registry/v2/blobs/x/data", 1000)
	write("registry/credentials", 5)
	write("work/checkout/file", 7)
	s := NewSizer(dir, map[string]string{"db": "cccp.db", "logs": "logs", "registry": "registry/storage"}, 0)
	var sb strings.Builder
	if err := s.WriteMetrics(t.Context(), &sb); err != nil {
		t.Fatal(err)
	}
	want := `# HELP cccp_data_bytes Size of cccp's data folder, by part.
# TYPE cccp_data_bytes gauge
cccp_data_bytes{part="db"} 100
cccp_data_bytes{part="logs"} 30
cccp_data_bytes{part="other"} 12
cccp_data_bytes{part="registry"} 1000
`
	if sb.String() != want {
		t.Errorf("metrics:\n%s\nwant:\n%s", sb.String(), want)
	}
}

// TestSizerSkipsMounts: a mount inside the data folder (a running build's
// merged overlay in the build storage, whose files lie in the folder's
// layers already) is not counted again.
func TestSizerSkipsMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "layer"), make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", merged, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(merged, syscall.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(merged, "file"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	parts, err := NewSizer(dir, nil, 0).Sizes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Bytes != 100 {
		t.Errorf("sizes %+v, want other 100 (the mount's file not counted)", parts)
	}
}

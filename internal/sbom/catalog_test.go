package sbom

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// zeros reads as n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// layer streams a tar of files (name -> size of zeros, or content).
func layer(t *testing.T, files []tarFile) *tar.Reader {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for _, f := range files {
			var r io.Reader = strings.NewReader(f.content)
			size := int64(len(f.content))
			if f.zeros > 0 {
				r, size = &zeros{n: f.zeros}, f.zeros
			}
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, r); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	return tar.NewReader(pr)
}

type tarFile struct {
	name    string
	content string
	zeros   int64
}

// TestCatalogBoundsWhatItKeeps: an image is the repository's to shape; its
// package databases are kept until the layer walk ends, so their total is
// bounded, and so is the number of packages.
func TestCatalogBoundsWhatItKeeps(t *testing.T) {
	var many []tarFile
	for i := range 80 { // 80 MiB of status.d files, each under the per-file cap
		many = append(many, tarFile{name: fmt.Sprintf("var/lib/dpkg/status.d/p%d", i), zeros: 1 << 20})
	}
	var stanzas strings.Builder
	for i := range maxPackages + 1 {
		fmt.Fprintf(&stanzas, "Package: p%d\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n", i)
	}
	tests := []struct {
		name    string
		files   []tarFile
		wantErr bool
	}{
		{"databases over the total", many, true},
		{"more packages than described", []tarFile{{name: "var/lib/dpkg/status", content: stanzas.String()}}, true},
		{"an ordinary image", []tarFile{{name: "etc/os-release", content: "ID=debian\n"},
			{name: "var/lib/dpkg/status", content: "Package: busybox\nStatus: install ok installed\nVersion: 1.35\nArchitecture: amd64\n\n"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, _, err := catalog(layer(t, tt.files))
			if tt.wantErr {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("catalog = %d packages, %v; want ErrTooLarge", len(pkgs), err)
				}
				return
			}
			if err != nil || len(pkgs) != 1 || pkgs[0].Name != "busybox" {
				t.Fatalf("catalog = %+v, %v; want busybox", pkgs, err)
			}
		})
	}
}

package sbom_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/testimage"
)

// layer makes an image layer of the given files (path → content, mode).
func layer(t *testing.T, files []file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if f.link != "" {
			h = &tar.Header{Name: f.path, Linkname: f.link, Typeflag: tar.TypeSymlink, Mode: 0o777}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type file struct {
	path string
	data []byte
	mode int64
	link string
}

func TestGenerateCatalogs(t *testing.T) {
	reg, client := startRegistry(t)
	ctx := t.Context()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	// gofmt: a Go binary with build information, and small.
	goBin, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "bin", "gofmt"))
	if err != nil {
		t.Fatal(err)
	}
	dpkg := "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\nDescription: GNU C\n multi-line\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n" +
		"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2\n"
	apk := "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:zlib\nV:1.3-r0\nA:x86_64\n"
	l1 := layer(t, []file{
		{path: "etc/os-release", data: []byte("NAME=\"Debian\"\nID=debian\n"), mode: 0o644},
		{path: "var/lib/dpkg/status", data: []byte(dpkg), mode: 0o644},
		{path: "lib/apk/db/installed", data: []byte(apk), mode: 0o644},
		{path: "usr/bin/app", data: goBin, mode: 0o755},
		{path: "usr/bin/evil", link: "../../../../etc/shadow"},
	})
	lay, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l1)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, lay)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := client.Reference(reg.Host() + "/demo/gen-attest:rc")
	if err := remote.Write(r, img, client.RemoteOptions(ctx)...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ref := reg.Host() + "/demo/gen-attest@" + d.String()
	g := sbom.NewGenerator(client, "test")
	for _, f := range []sbom.Format{sbom.SPDX, sbom.CycloneDX} {
		t.Run(string(f), func(t *testing.T) {
			doc, err := g.Generate(ctx, ref, f)
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := sbom.Packages(doc)
			if err != nil {
				t.Fatal(err)
			}
			has := map[string]string{}
			for _, p := range pkgs {
				has[p.Type+"/"+p.Name] = p.Version
			}
			for k, v := range map[string]string{
				"deb/libc6": "2.36-9", "deb/bash": "5.2.15-2", "apk/musl": "1.2.4-r2", "apk/zlib": "1.3-r0",
				"golang/stdlib": runtime.Version(),
			} {
				got, ok := has[k]
				if !ok || (v != "" && got != v) {
					t.Errorf("%s: %s = %q (listed %v), want %q", f, k, got, ok, v)
				}
			}
			if _, ok := has["deb/gone"]; ok {
				t.Errorf("%s lists a removed dpkg package", f)
			}
			if f == sbom.SPDX && !strings.Contains(string(doc), `"spdxVersion": "SPDX-2.3"`) && !strings.Contains(string(doc), `"spdxVersion":"SPDX-2.3"`) {
				t.Errorf("not SPDX 2.3: %.200s", doc)
			}
			if f == sbom.SPDX && !strings.Contains(string(doc), "pkg:deb/debian/libc6@2.36-9?arch=amd64") {
				t.Errorf("no purl for libc6 in %.400s", doc)
			}
		})
	}
}

func TestGenerateBusybox(t *testing.T) {
	testimage.Require(t)
	reg, client := startRegistry(t)
	u, p := reg.PushCredentials()
	pushed := testimage.PushBusybox(t, reg.Host(), u, p)
	d, err := client.Digest(t.Context(), pushed)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host() + "/busybox@" + d
	doc, err := sbom.NewGenerator(client, "test").Generate(t.Context(), ref, sbom.SPDX)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := sbom.Packages(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Name == "busybox" && p.Version != "" {
			return
		}
	}
	t.Errorf("the SBOM of %s does not list busybox: %+v", ref, pkgs)
}

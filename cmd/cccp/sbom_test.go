package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/web"
)

// TestSBOMPanel reads SBOMs internal/sbom attached to images in a real
// embedded registry.
func TestSBOMPanel(t *testing.T) {
	ctx := t.Context()
	reg, err := registry.Start(ctx, registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	u, p := reg.PushCredentials()
	client := registry.NewClient(registry.ClientConfig{
		AuthFiles:   []string{},
		Credentials: map[string]registry.Credentials{reg.Host(): {User: u, Password: p}},
	})
	repo := reg.Host() + "/acme/sbompanel"
	push := func(tag string) string {
		t.Helper()
		img, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := client.Reference(repo + ":" + tag)
		if err := remote.Write(r, img, client.RemoteOptions(ctx)...); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String()
	}
	spdx := func(pkgs ...string) []byte {
		doc := `{"spdxVersion":"SPDX-2.3","packages":[`
		for i := 0; i < len(pkgs); i += 2 {
			if i > 0 {
				doc += ","
			}
			doc += `{"SPDXID":"SPDXRef-p` + pkgs[i] + `","name":"` + pkgs[i] + `","versionInfo":"` + pkgs[i+1] +
				`","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:apk/alpine/` + pkgs[i] + `@` + pkgs[i+1] + `"}]}`
		}
		return []byte(doc + `]}`)
	}
	bare, old, cur := push("bare"), push("old"), push("latest")
	oldDoc := spdx("busybox", "1.36.0", "musl", "1.2.4", "zlib", "1.3")
	curDoc := spdx("busybox", "1.36.1", "musl", "1.2.4", "openssl", "3.3.0")
	for _, a := range []struct {
		digest string
		doc    []byte
	}{{old, oldDoc}, {cur, curDoc}} {
		if _, err := sbom.Attach(ctx, client, repo+"@"+a.digest, sbom.SPDX, a.doc); err != nil {
			t.Fatal(err)
		}
	}
	panel := sbomPanel{reg: client}

	sum, err := panel.Summary(ctx, repo, cur, old)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packages != 3 || !sum.Compared ||
		len(sum.Added) != 1 || sum.Added[0] != (web.SBOMPackage{Type: "apk", Name: "openssl", Version: "3.3.0"}) ||
		len(sum.Removed) != 1 || sum.Removed[0] != (web.SBOMPackage{Type: "apk", Name: "zlib", Version: "1.3"}) ||
		len(sum.Upgraded) != 1 || sum.Upgraded[0] != (web.SBOMChange{Type: "apk", Name: "busybox", From: "1.36.0", To: "1.36.1"}) {
		t.Errorf("Summary = %+v", sum)
	}

	// The previous delivery predates SBOMs: a count, nothing compared.
	if sum, err := panel.Summary(ctx, repo, cur, bare); err != nil || sum.Packages != 3 || sum.Compared || len(sum.Added) != 0 {
		t.Errorf("Summary since an image without SBOM = %+v, %v", sum, err)
	}
	if _, err := panel.Summary(ctx, repo, bare, ""); !errors.Is(err, web.ErrNoSBOM) {
		t.Errorf("Summary of an image without SBOM: %v, want ErrNoSBOM", err)
	}

	var buf bytes.Buffer
	if err := panel.Document(ctx, repo, cur, &buf); err != nil || !bytes.Equal(buf.Bytes(), curDoc) {
		t.Errorf("Document = %q, %v; want the attached document", buf.String(), err)
	}
	if err := panel.Document(ctx, repo, bare, &buf); !errors.Is(err, web.ErrNoSBOM) {
		t.Errorf("Document of an image without SBOM: %v, want ErrNoSBOM", err)
	}
}

package sbom_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/sbom"
)

func startRegistry(t testing.TB) (*registry.Embedded, *registry.Client) {
	t.Helper()
	reg, err := registry.Start(t.Context(), registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	u, p := reg.PushCredentials()
	return reg, registry.NewClient(registry.ClientConfig{
		AuthFiles:   []string{},
		Credentials: map[string]registry.Credentials{reg.Host(): {User: u, Password: p}},
	})
}

func TestAttachFind(t *testing.T) {
	reg, client := startRegistry(t)
	ctx := t.Context()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := client.Reference(reg.Host() + "/demo/sbom-attest:rc")
	if err := remote.Write(r, img, client.RemoteOptions(ctx)...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ref := reg.Host() + "/demo/sbom-attest@" + d.String()

	if got, err := sbom.Find(ctx, client, ref); err != nil || len(got) != 0 {
		t.Fatalf("Find before attaching = %v, %v; want none", got, err)
	}
	doc := []byte(`{"spdxVersion":"SPDX-2.3","packages":[]}`)
	art, err := sbom.Attach(ctx, client, ref, sbom.SPDX, doc)
	if err != nil {
		t.Fatal(err)
	}
	// The referrers tag schema of the OCI distribution spec: an image
	// index at sha256-<hex> listing the artifact with its type.
	tag, _ := client.Reference(reg.Host() + "/demo/sbom-attest:" + strings.Replace(d.String(), ":", "-", 1))
	desc, err := remote.Get(tag, client.RemoteOptions(ctx)...)
	if err != nil {
		t.Fatalf("referrers tag: %v", err)
	}
	if desc.MediaType != types.OCIImageIndex {
		t.Errorf("referrers tag media type %s", desc.MediaType)
	}
	var idx struct {
		Manifests []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(desc.Manifest, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].ArtifactType != "application/spdx+json" || !strings.HasSuffix(art, idx.Manifests[0].Digest) {
		t.Errorf("referrers index = %s, want the artifact %s", desc.Manifest, art)
	}
	// The artifact names the image as its subject.
	ar, _ := client.Reference(art)
	adesc, err := remote.Get(ar, client.RemoteOptions(ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Subject struct{ Digest string } `json:"subject"`
	}
	if err := json.Unmarshal(adesc.Manifest, &m); err != nil || m.Subject.Digest != d.String() {
		t.Errorf("artifact subject = %q (%v), want %s", m.Subject.Digest, err, d)
	}

	got, err := sbom.Find(ctx, client, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Ref != art || got[0].Format != sbom.SPDX || got[0].Created.IsZero() {
		t.Fatalf("Find = %+v, want %s", got, art)
	}
	back, err := sbom.Read(ctx, client, got[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(back) != string(doc) {
		t.Errorf("Read = %s, want %s", back, doc)
	}
}

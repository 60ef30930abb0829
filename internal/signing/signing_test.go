package signing_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/signing"
)

func TestKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "signing")
	k, err := signing.LoadOrCreateKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, signing.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("cosign.key mode %v, want 0600", st.Mode().Perm())
	}
	pub, err := os.ReadFile(filepath.Join(dir, signing.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(pub) != string(k.PublicKeyPEM()) || !strings.HasPrefix(string(pub), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("cosign.pub = %q", pub)
	}
	again, err := signing.LoadOrCreateKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != k.ID() {
		t.Errorf("second start made a new key: %s != %s", again.ID(), k.ID())
	}
	v, err := signing.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID() != k.ID() {
		t.Errorf("public key id %s, want %s", v.ID(), k.ID())
	}

	t.Run("a key others may read is refused", func(t *testing.T) {
		if err := os.Chmod(filepath.Join(dir, signing.PrivateKeyFile), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(filepath.Join(dir, signing.PrivateKeyFile), 0o600)
		_, err := signing.LoadOrCreateKey(dir, nil)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("err = %v, want a refusal naming chmod 600", err)
		}
	})
	for _, tc := range []struct{ name, data, want string }{
		{"not PEM", "hello", "not PEM"},
		{"encrypted cosign key", "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "encrypted cosign key"},
		{"garbage in a PEM block", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(p, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := signing.LoadKey(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// env is an embedded registry, a client with its push credentials and a
// key.
type env struct {
	reg    *registry.Embedded
	client *registry.Client
	key    *signing.Key
	keyDir string
}

func newEnv(t testing.TB) env {
	t.Helper()
	reg, err := registry.Start(t.Context(), registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	u, p := reg.PushCredentials()
	client := registry.NewClient(registry.ClientConfig{
		AuthFiles:   []string{},
		Credentials: map[string]registry.Credentials{reg.Host(): {User: u, Password: p}},
	})
	dir := filepath.Join(t.TempDir(), "signing")
	key, err := signing.LoadOrCreateKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return env{reg: reg, client: client, key: key, keyDir: dir}
}

// push writes a random image to ref and returns "repo@digest".
func (e env) push(t testing.TB, ref string) string {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.client.Reference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, e.client.RemoteOptions(t.Context())...); err != nil {
		t.Fatal(err)
	}
	return digestRef(t, r, img)
}

func digestRef(t testing.TB, r name.Reference, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Context().String() + "@" + d.String()
}

func TestSignAndVerify(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	signed := e.push(t, e.reg.Host()+"/demo/app-attest:rc")
	unsigned := e.push(t, e.reg.Host()+"/demo/app-attest:other")
	s := signing.NewSigner(e.key, e.client, nil)
	if err := s.Sign(ctx, signed); err != nil {
		t.Fatal(err)
	}
	// Signing again (a re-delivery) adds nothing.
	if err := s.Sign(ctx, signed); err != nil {
		t.Fatal(err)
	}
	sigTag := strings.Replace(signed, "@sha256:", ":sha256-", 1) + ".sig"
	r, _ := e.client.Reference(sigTag)
	img, err := remote.Image(r, e.client.RemoteOptions(ctx)...)
	if err != nil {
		t.Fatalf("read %s: %v", sigTag, err)
	}
	m, _ := img.Manifest()
	if len(m.Layers) != 1 || m.Layers[0].MediaType != signing.SimpleSigningMediaType || m.Layers[0].Annotations[signing.SignatureAnnotation] == "" {
		t.Errorf("signature image layers = %+v, want one simple-signing layer with a signature", m.Layers)
	}
	// Delivery re-tags the digest by manifest copy.
	if err := e.client.Tag(ctx, signed, e.reg.Host()+"/demo/app-attest:latest"); err != nil {
		t.Fatal(err)
	}
	other, err := signing.LoadOrCreateKey(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		key     *signing.Key
		ref     string
		wantErr error
	}{
		{"signed digest", e.key, signed, nil},
		{"re-tagged after signing", e.key, e.reg.Host() + "/demo/app-attest:latest", nil},
		{"unsigned digest", e.key, unsigned, signing.ErrUnsigned},
		{"another key", other, signed, signing.ErrOtherKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := signing.NewChecker(tc.key.Verifier(), e.client).Verify(ctx, tc.ref)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify(%s) = %v, want %v", tc.ref, err, tc.wantErr)
			}
		})
	}

	t.Run("cosign CLI", func(t *testing.T) {
		cosign := Cosign(t)
		otherDir := t.TempDir()
		if _, err := signing.LoadOrCreateKey(otherDir, nil); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, pub, ref string
			ok             bool
		}{
			{"signed digest", e.keyDir, signed, true},
			{"re-tagged", e.keyDir, e.reg.Host() + "/demo/app-attest:latest", true},
			{"unsigned", e.keyDir, unsigned, false},
			{"another key", otherDir, signed, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := exec.CommandContext(ctx, cosign, "verify", "--key", filepath.Join(tc.pub, signing.PublicKeyFile),
					"--insecure-ignore-tlog=true", "--allow-http-registry", tc.ref).CombinedOutput()
				if (err == nil) != tc.ok {
					t.Fatalf("cosign verify %s: err=%v, want ok=%v\n%s", tc.ref, err, tc.ok, out)
				}
			})
		}
	})
}

// Cosign returns the cosign CLI that hack/tools.sh installs into
// bin/tools ($COSIGN overrides). Under CI its absence is a failure.
func Cosign(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COSIGN"); p != "" {
		return p
	}
	p, err := filepath.Abs("../../bin/tools/cosign")
	if err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("cosign is not installed; make test runs hack/tools.sh")
	}
	t.Skip("cosign is not installed (./hack/tools.sh)")
	return ""
}

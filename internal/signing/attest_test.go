package signing_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/provenance"
	"github.com/cccp-project/cccp/internal/signing"
)

func TestAttest(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ref := e.push(t, e.reg.Host()+"/demo/att-attest:rc")
	repo, digest, _ := strings.Cut(ref, "@")
	st, err := provenance.Statement(provenance.Build{
		Image: repo, Digest: digest, BuilderID: "http://127.0.0.1:8080/", Version: "test",
		Entry: "demo/att:latest", SourceURL: "https://git.example.org/att.git", Commit: strings.Repeat("c", 40), Ref: "main",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.NewSigner(e.key, e.client, nil).Attest(ctx, ref, st, provenance.PredicateType); err != nil {
		t.Fatal(err)
	}
	got, err := signing.NewChecker(e.key.Verifier(), e.client).Attestations(ctx, ref, provenance.PredicateType)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0]) != string(st) {
		t.Errorf("Attestations = %q, want the statement", got)
	}
	other, err := signing.LoadOrCreateKey(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.NewChecker(other.Verifier(), e.client).Attestations(ctx, ref, provenance.PredicateType); !errors.Is(err, signing.ErrOtherKey) {
		t.Errorf("another key: err = %v, want ErrOtherKey", err)
	}
	if _, err := signing.NewChecker(e.key.Verifier(), e.client).Attestations(ctx, ref, "https://spdx.dev/Document"); !errors.Is(err, signing.ErrUnsigned) {
		t.Errorf("another predicate type: err = %v, want ErrUnsigned", err)
	}

	t.Run("cosign verify-attestation", func(t *testing.T) {
		cosign := Cosign(t)
		for _, tc := range []struct {
			name, typ string
			ok        bool
		}{
			{"slsaprovenance1", "slsaprovenance1", true},
			{"wrong type", "spdxjson", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := exec.CommandContext(ctx, cosign, "verify-attestation", "--type", tc.typ,
					"--key", filepath.Join(e.keyDir, signing.PublicKeyFile),
					"--insecure-ignore-tlog=true", "--allow-http-registry", ref).CombinedOutput()
				if (err == nil) != tc.ok {
					t.Fatalf("cosign verify-attestation: err=%v, want ok=%v\n%s", err, tc.ok, out)
				}
			})
		}
	})
}

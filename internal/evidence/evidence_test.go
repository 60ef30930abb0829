package evidence_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/evidence"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/signing"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

type env struct {
	reg    *registry.Embedded
	client *registry.Client
	key    *signing.Key
	keyDir string
	att    *evidence.Attester
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
	att := evidence.New(evidence.Config{
		Signer: signing.NewSigner(key, client, nil), SBOM: sbom.NewGenerator(client, "test"), Registry: client,
		BuilderID: "http://127.0.0.1:8080/", Version: "test",
	})
	return env{reg: reg, client: client, key: key, keyDir: dir, att: att}
}

// pushRandom pushes a random image to ref and returns "repo@digest".
func (e env) pushRandom(t testing.TB, ref string) string {
	t.Helper()
	img, err := random.Image(256, 1)
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
	d, _ := img.Digest()
	return r.Context().String() + "@" + d.String()
}

func TestDeliveredImageVerifiesWithCosign(t *testing.T) {
	testimage.Require(t)
	testgit.Require(t)
	e := newEnv(t)
	ctx := t.Context()
	host := e.reg.Host()
	u, p := e.reg.PushCredentials()

	// The parent: busybox, delivered (and so signed) first.
	parentTag := testimage.PushBusybox(t, host, u, p)
	parentDigest, err := e.client.Digest(ctx, parentTag)
	if err != nil {
		t.Fatal(err)
	}
	parent := host + "/busybox@" + parentDigest
	repo := testgit.Repo(t, "main", map[string]string{"Dockerfile": "FROM " + parent + "\n"})
	commit := strings.TrimSpace(testgit.Run(t, repo, "rev-parse", "HEAD"))
	if _, err := e.att.Attest(ctx, evidence.Delivery{Image: parent, Kind: types.KindBranch, Entry: "lib/busybox:latest",
		SourceURL: repo, Commit: commit, Ref: "main"}); err != nil {
		t.Fatal(err)
	}

	// The child, built FROM the parent's digest: the pipeline pins it.
	child := e.pushRandom(t, host+"/demo/child-attest:rc")
	res, err := e.att.Attest(ctx, evidence.Delivery{
		Image: child, Kind: types.KindBranch, Entry: "demo/child:latest",
		Parameters: map[string]string{"git-url": repo, "git-branch": "main", "target-file": "Dockerfile"},
		SourceURL:  repo, Commit: commit, Ref: "main", Parents: []string{parent}, RunURL: "http://127.0.0.1:8080/runs/1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SBOM == "" {
		t.Error("no SBOM attached")
	}
	// Delivery re-tags the digest.
	delivered := host + "/demo/child-attest:latest"
	if err := e.client.Tag(ctx, child, delivered); err != nil {
		t.Fatal(err)
	}

	cosign := cosignCLI(t)
	pub := filepath.Join(e.keyDir, signing.PublicKeyFile)
	run := func(args ...string) ([]byte, error) {
		args = append(args, "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry")
		cmd := exec.CommandContext(ctx, cosign, args...)
		cmd.Stderr = os.Stderr
		return cmd.Output()
	}
	if out, err := run("verify", delivered); err != nil {
		t.Fatalf("cosign verify %s: %v\n%s", delivered, err, out)
	}
	out, err := run("verify-attestation", "--type", "slsaprovenance1", delivered)
	if err != nil {
		t.Fatalf("cosign verify-attestation %s: %v\n%s", delivered, err, out)
	}
	// What cosign verified names the commit git has and the parent
	// digest the registry has.
	var envl struct{ Payload string }
	if err := json.Unmarshal([]byte(strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]), &envl); err != nil {
		t.Fatalf("cosign output: %v\n%s", err, out)
	}
	st, err := base64.StdEncoding.DecodeString(envl.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var stmt struct {
		Predicate struct {
			BuildDefinition struct {
				ExternalParameters struct {
					Source struct {
						Digest struct {
							GitCommit string `json:"gitCommit"`
						} `json:"digest"`
					} `json:"source"`
				} `json:"externalParameters"`
				ResolvedDependencies []struct {
					URI    string            `json:"uri"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(st, &stmt); err != nil {
		t.Fatal(err)
	}
	if got := stmt.Predicate.BuildDefinition.ExternalParameters.Source.Digest.GitCommit; got != commit {
		t.Errorf("provenance commit %q, git has %q", got, commit)
	}
	var parentDigests []string
	for _, d := range stmt.Predicate.BuildDefinition.ResolvedDependencies {
		if strings.HasPrefix(d.URI, "oci://") {
			parentDigests = append(parentDigests, "sha256:"+d.Digest["sha256"])
		}
	}
	if !slices.Equal(parentDigests, []string{parentDigest}) {
		t.Errorf("provenance parents %v, registry has %s", parentDigests, parentDigest)
	}

	// cccp verify's check agrees, from the tag.
	rep, err := evidence.Check(ctx, e.client, e.key.Verifier(), delivered)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Image != child || rep.Provenance.Commit != commit || len(rep.SBOMs) != 1 {
		t.Errorf("Check = %+v", rep)
	}
}

func TestPullRequestImagesAreNotSigned(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, kind := range []types.RunKind{types.KindPR, types.KindTrial} {
		t.Run(string(kind), func(t *testing.T) {
			img := e.pushRandom(t, e.reg.Host()+"/demo/pr-attest:pr-"+string(kind))
			_, err := e.att.Attest(ctx, evidence.Delivery{Image: img, Kind: kind, SourceURL: "https://x/y.git", Commit: strings.Repeat("a", 40)})
			if !errors.Is(err, evidence.ErrNotDelivered) {
				t.Fatalf("Attest(%s) = %v, want ErrNotDelivered", kind, err)
			}
			tags, err := e.client.Tags(ctx, e.reg.Host()+"/demo/pr-attest")
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				if strings.HasPrefix(tag, "sha256-") {
					t.Errorf("a %s run left %s", kind, tag)
				}
			}
		})
	}
}

func TestParentCheck(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	host := e.reg.Host()
	signed := e.pushRandom(t, host+"/lib/base-attest:latest")
	if _, err := e.att.Attest(ctx, evidence.Delivery{Image: signed, Kind: types.KindBranch, SourceURL: "https://x/base.git", Commit: strings.Repeat("b", 40)}); err != nil {
		t.Fatal(err)
	}
	// Someone re-tags the parent to an image cccp never signed.
	unsigned := e.pushRandom(t, host+"/lib/base-attest:latest")
	otherKey, err := signing.LoadOrCreateKey(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign := e.pushRandom(t, host+"/lib/foreign-attest:latest")
	if err := signing.NewSigner(otherKey, e.client, nil).Sign(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		policy  evidence.Policy
		parent  string
		wantErr string
	}{
		{"signed parent", evidence.Enforce, signed, ""},
		{"re-tagged to an unsigned image", evidence.Enforce, unsigned, "not signed by cccp"},
		{"signed by another key", evidence.Enforce, foreign, "not by this cccp's key"},
		{"unsigned, policy warn", evidence.Warn, unsigned, ""},
		{"unsigned, policy off", evidence.Off, unsigned, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := evidence.NewParentCheck(e.key.Verifier(), e.client, tc.policy, nil).Verify(ctx, tc.parent)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.parent) {
				t.Fatalf("Verify = %v, want an error naming %s and %q", err, tc.parent, tc.wantErr)
			}
		})
	}
}

// BenchmarkCheck is what `cccp verify` does against the embedded
// registry: resolve the tag, check the signature and the provenance,
// list the SBOMs. The bar is 200 ms.
func BenchmarkCheck(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	img := e.pushRandom(b, e.reg.Host()+"/demo/bench-attest:rc")
	if _, err := e.att.Attest(ctx, evidence.Delivery{Image: img, Kind: types.KindBranch, SourceURL: "https://x/y.git", Commit: strings.Repeat("a", 40)}); err != nil {
		b.Fatal(err)
	}
	if err := e.client.Tag(ctx, img, e.reg.Host()+"/demo/bench-attest:latest"); err != nil {
		b.Fatal(err)
	}
	v := e.key.Verifier()
	b.ResetTimer()
	for b.Loop() {
		client := registry.NewClient(registry.ClientConfig{AuthFiles: []string{}}) // as cccp verify: anonymous, fresh
		if _, err := evidence.Check(ctx, client, v, e.reg.Host()+"/demo/bench-attest:latest"); err != nil {
			b.Fatal(err)
		}
	}
}

// cosignCLI returns the cosign CLI that hack/tools.sh installs into
// bin/tools ($COSIGN overrides). Under CI its absence is a failure.
func cosignCLI(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COSIGN"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../../bin/tools/cosign"); err == nil {
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

package signing_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cccp-project/cccp/internal/provenance"
	"github.com/cccp-project/cccp/internal/signing"
)

// concurrently is how many deliveries of one digest race: two entries
// built from the same repository and commit, two workers, a retry.
const concurrently = 8

// TestSignConcurrently: deliveries of the same digest at once through
// one Signer sign it once: one signing, one write of the signature tag,
// and exactly one signature by its key there afterwards.
func TestSignConcurrently(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ref := e.push(t, e.reg.Host()+"/demo/race-sign:rc")
	var logs bytes.Buffer // slog's handler serialises its writes
	s := signing.NewSigner(e.key, e.client, slog.New(slog.NewTextHandler(&logs, nil)))
	race(t, concurrently, func(int) error { return s.Sign(ctx, ref) })

	if n := strings.Count(logs.String(), "msg=signed "); n != 1 {
		t.Errorf("%d concurrent Sign calls signed the digest %d times, want once:\n%s", concurrently, n, logs.String())
	}

	layers := artifactLayers(t, e, ref, "sig")
	if len(layers) != 1 || layers[0] != string(signing.SimpleSigningMediaType) {
		t.Errorf("signature image after %d concurrent Sign calls has layers %v, want one simple-signing layer", concurrently, layers)
	}
	if err := signing.NewChecker(e.key.Verifier(), e.client).Verify(ctx, ref); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestAttestConcurrently: different statements attached to the same
// digest at once through one Signer are all kept (no lost update).
func TestAttestConcurrently(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ref := e.push(t, e.reg.Host()+"/demo/race-attest:rc")
	repo, digest, _ := strings.Cut(ref, "@")
	s := signing.NewSigner(e.key, e.client, nil)
	want := map[string]bool{}
	sts := make([][]byte, concurrently)
	for i := range sts {
		st, err := provenance.Statement(provenance.Build{
			Image: repo, Digest: digest, BuilderID: "http://127.0.0.1:8080/", Version: "test",
			Entry: fmt.Sprintf("demo/race-%d:latest", i), SourceURL: "https://git.example.org/race.git",
			Commit: strings.Repeat("c", 40), Ref: "main",
		})
		if err != nil {
			t.Fatal(err)
		}
		sts[i] = st
		want[string(st)] = true
	}
	race(t, concurrently, func(i int) error { return s.Attest(ctx, ref, sts[i], provenance.PredicateType) })

	got, err := signing.NewChecker(e.key.Verifier(), e.client).Attestations(ctx, ref, provenance.PredicateType)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range got {
		delete(want, string(st))
	}
	if len(got) != concurrently || len(want) != 0 {
		t.Errorf("after %d concurrent Attest calls: %d attestations, %d statements missing", concurrently, len(got), len(want))
	}
}

// TestConcurrentDigestsIndependent: Sign and Attest on different digests
// at once all land (the lock is per artifact tag, not one for all).
func TestConcurrentDigestsIndependent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	refs := make([]string, 4)
	for i := range refs {
		refs[i] = e.push(t, fmt.Sprintf("%s/demo/race-many:%d", e.reg.Host(), i))
	}
	s := signing.NewSigner(e.key, e.client, nil)
	race(t, 2*len(refs), func(i int) error {
		ref := refs[i/2]
		if i%2 == 0 {
			return s.Sign(ctx, ref)
		}
		repo, digest, _ := strings.Cut(ref, "@")
		st, err := provenance.Statement(provenance.Build{
			Image: repo, Digest: digest, BuilderID: "http://127.0.0.1:8080/", Version: "test",
			Entry: "demo/race-many:latest", SourceURL: "https://git.example.org/race.git",
			Commit: strings.Repeat("d", 40), Ref: "main",
		})
		if err != nil {
			return err
		}
		return s.Attest(ctx, ref, st, provenance.PredicateType)
	})
	c := signing.NewChecker(e.key.Verifier(), e.client)
	for _, ref := range refs {
		if err := c.Verify(ctx, ref); err != nil {
			t.Errorf("Verify(%s): %v", ref, err)
		}
		if got, err := c.Attestations(ctx, ref, provenance.PredicateType); err != nil || len(got) != 1 {
			t.Errorf("Attestations(%s) = %d, %v; want one", ref, len(got), err)
		}
	}
}

// race runs f(0..n-1) in n goroutines released together and fails the
// test on any error.
func race(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

// artifactLayers returns the media types of the layers of cosign's
// sha256-<hex>.<suffix> image for ref ("repo@sha256:...").
func artifactLayers(t *testing.T, e env, ref, suffix string) []string {
	t.Helper()
	tag := strings.Replace(ref, "@sha256:", ":sha256-", 1) + "." + suffix
	r, err := e.client.Reference(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, e.client.RemoteOptions(t.Context())...)
	if err != nil {
		t.Fatalf("read %s: %v", tag, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, string(l.MediaType))
	}
	return out
}

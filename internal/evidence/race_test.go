package evidence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cccp-project/cccp/internal/evidence"
	"github.com/cccp-project/cccp/internal/provenance"
	"github.com/cccp-project/cccp/internal/sbom"
	"github.com/cccp-project/cccp/internal/signing"
	"github.com/cccp-project/cccp/internal/types"
)

// TestConcurrentDeliveriesOfOneDigest: entries built from the same
// repository and commit deliver the same digest, at once, through the
// one Attester of the process. Afterwards the digest verifies, carries
// one signature and every entry's provenance, and every SBOM attached
// is listed in the referrers tag.
func TestConcurrentDeliveriesOfOneDigest(t *testing.T) {
	const n = 4
	e := newEnv(t)
	ctx := t.Context()
	// The generator stamps its document to the second, so SBOMs made in
	// the same second are one artifact; deliveries whose SBOMs finish in
	// different seconds attach different ones. Make every one distinct,
	// as if each finished in its own second, so a lost entry shows.
	e.att = evidence.New(evidence.Config{
		Signer: signing.NewSigner(e.key, e.client, nil), Registry: e.client,
		SBOM:      &distinctSBOMs{g: sbom.NewGenerator(e.client, "test")},
		BuilderID: "http://127.0.0.1:8080/", Version: "test",
	})
	img := e.pushRandom(t, e.reg.Host()+"/demo/race-attest:rc")

	var wg sync.WaitGroup
	start := make(chan struct{})
	res := make([]evidence.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			res[i], errs[i] = e.att.Attest(ctx, evidence.Delivery{
				Image: img, Kind: types.KindBranch, Entry: fmt.Sprintf("demo/race-%d:latest", i),
				SourceURL: "https://x/race.git", Commit: strings.Repeat("a", 40), Ref: "main",
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}

	if _, err := evidence.Check(ctx, e.client, e.key.Verifier(), img); err != nil {
		t.Errorf("Check: %v", err)
	}
	sts, err := signing.NewChecker(e.key.Verifier(), e.client).Attestations(ctx, img, provenance.PredicateType)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]bool{}
	for _, st := range sts {
		p, err := provenance.Parse(st)
		if err != nil {
			t.Fatal(err)
		}
		entries[p.Entry] = true
	}
	if len(sts) != n || len(entries) != n {
		t.Errorf("%d provenance statements for %d entries after %d deliveries, want %d each", len(sts), len(entries), n, n)
	}
	found, err := sbom.Find(ctx, e.client, img)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, f := range found {
		listed[f.Ref] = true
	}
	for i, r := range res {
		if !listed[r.SBOM] {
			t.Errorf("delivery %d's SBOM %s is not in the referrers tag (%d listed)", i, r.SBOM, len(found))
		}
	}
}

// distinctSBOMs names each document the real generator makes "sbom-<n>".
type distinctSBOMs struct {
	g evidence.Generator
	n atomic.Int64
}

func (d *distinctSBOMs) Generate(ctx context.Context, digestRef string, f sbom.Format) ([]byte, error) {
	doc, err := d.g.Generate(ctx, digestRef, f)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, err
	}
	m["name"] = fmt.Sprintf("sbom-%d", d.n.Add(1))
	return json.Marshal(m)
}

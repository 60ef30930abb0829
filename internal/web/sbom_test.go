package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// fakeSBOMs answers from a map of "repository@digest" to documents and
// summaries, and records what it was asked.
type fakeSBOMs struct {
	summary SBOMSummary
	err     error
	doc     string
	asked   []string
}

func (f *fakeSBOMs) Summary(ctx context.Context, repository, digest, previous string) (SBOMSummary, error) {
	f.asked = append(f.asked, repository+"@"+digest+" since "+previous)
	return f.summary, f.err
}

func (f *fakeSBOMs) Document(ctx context.Context, repository, digest string, w io.Writer) error {
	f.asked = append(f.asked, "doc "+repository+"@"+digest)
	if f.err != nil {
		return f.err
	}
	_, err := io.WriteString(w, f.doc)
	return err
}

func TestProjectSBOM(t *testing.T) {
	const (
		oldDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		newDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	)
	many := make([]SBOMPackage, 60)
	for i := range many {
		many[i] = SBOMPackage{Type: "apk", Name: fmt.Sprintf("pkg%02d", i), Version: "1"}
	}
	tests := []struct {
		name    string
		fake    fakeSBOMs
		want    []string
		not     []string
		docCode int
		docWant string
	}{
		{"summary", fakeSBOMs{summary: SBOMSummary{Packages: 14, Compared: true,
			Added:    []SBOMPackage{{Type: "apk", Name: "<script>alert(1)</script>", Version: "2.0"}},
			Removed:  []SBOMPackage{{Type: "deb", Name: "oldlib", Version: "0.9"}},
			Upgraded: []SBOMChange{{Type: "apk", Name: "busybox", From: "1.36.0", To: "1.36.1"}}},
			doc: `{"spdxVersion":"SPDX-2.3"}`},
			[]string{"14 packages.", `href="/projects/acme/base:latest/sbom"`, "1 added, 1 removed, 1 upgraded",
				"&lt;script&gt;alert(1)&lt;/script&gt;", "removed <code>oldlib</code> 0.9", "upgraded <code>busybox</code> 1.36.0 → 1.36.1", "sha256:111111111111"},
			[]string{"<script>alert(1)"}, 200, `{"spdxVersion":"SPDX-2.3"}`},
		{"capped", fakeSBOMs{summary: SBOMSummary{Packages: 60, Compared: true, Added: many}},
			[]string{"60 added, 0 removed, 0 upgraded (10 more not shown)", "pkg49"}, []string{"pkg50"}, 200, ""},
		{"nothing changed", fakeSBOMs{summary: SBOMSummary{Packages: 3, Compared: true}},
			[]string{"3 packages.", "No package changed since the previous delivery."}, nil, 200, ""},
		{"no earlier SBOM", fakeSBOMs{summary: SBOMSummary{Packages: 3}},
			[]string{"No earlier delivery with an SBOM to compare with."}, nil, 200, ""},
		{"no SBOM", fakeSBOMs{err: fmt.Errorf("find: %w", ErrNoSBOM)},
			[]string{"This image has no SBOM"}, []string{"packages.", `/sbom"`}, 404, "has no SBOM"},
		{"error", fakeSBOMs{err: errors.New("GET https://registry.internal:5000/v2/acme/base/referrers: password " + secret)},
			[]string{"The SBOM could not be read"}, []string{"registry.internal", secret, "s3cr3t"}, 500, "reading the SBOM of acme/base:latest failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := tt.fake
			f := newFixture(t, func(c *Config) { c.SBOMs = &fake })
			push := store.Cause{Kind: "push", Ref: "refs/heads/master"}
			passed := map[types.StageName]store.State{"build": store.Passed, "test": store.Passed, "deliver": store.Passed}
			// The newest digest was delivered twice (a rebuild that changed
			// nothing): the previous delivery is the one before.
			for _, d := range []string{oldDigest, newDigest, newDigest} {
				r := f.addRun("acme/base:latest", types.KindBranch, push, passed, "")
				if _, err := f.db.UpdateRun(context.Background(), r.ID, func(r *store.Run) error {
					for i := range r.Images {
						r.Images[i].Digest = d
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			// A newer PR run's images are not a delivery.
			f.addRun("acme/base:latest", types.KindPR, push, passed, "")

			rec := f.get("/projects/acme/base:latest")
			body := rec.Body.String()
			if rec.Code != 200 {
				t.Fatalf("project page: %d %s", rec.Code, body)
			}
			hasAll(t, "project page", body, tt.want, tt.not)
			if want := "registry.example.org/acme/base@" + newDigest + " since " + oldDigest; len(fake.asked) != 1 || fake.asked[0] != want {
				t.Errorf("asked %q, want [%q]", fake.asked, want)
			}

			rec = f.get("/projects/acme/base:latest/sbom")
			if rec.Code != tt.docCode || !strings.Contains(rec.Body.String(), tt.docWant) {
				t.Errorf("document: %d %q, want %d with %q", rec.Code, rec.Body.String(), tt.docCode, tt.docWant)
			}
			if strings.Contains(rec.Body.String(), secret) || strings.Contains(rec.Body.String(), "registry.internal") {
				t.Errorf("document error leaks internals: %s", rec.Body.String())
			}
			if got := fake.asked[len(fake.asked)-1]; got != "doc registry.example.org/acme/base@"+newDigest {
				t.Errorf("document of %q", got)
			}
		})
	}
}

func TestProjectSBOMWithoutDelivery(t *testing.T) {
	fake := &fakeSBOMs{}
	f := seeded(t, func(c *Config) { c.SBOMs = fake })
	rec := f.get("/projects/acme/api:latest")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "Software bill of materials") {
		t.Errorf("project never delivered: %d, shows an SBOM section", rec.Code)
	}
	if rec := f.get("/projects/acme/api:latest/sbom"); rec.Code != 404 {
		t.Errorf("document of a project never delivered: %d", rec.Code)
	}
	if len(fake.asked) != 0 {
		t.Errorf("asked %q for a project never delivered", fake.asked)
	}
}

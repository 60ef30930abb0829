package provenance_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/provenance"
)

func sample() provenance.Build {
	return provenance.Build{
		Image:      "127.0.0.1:5115/demo/hello",
		Digest:     "sha256:" + strings.Repeat("ab", 32),
		BuilderID:  "https://cccp.example.org/",
		Version:    "v1.2.3",
		Entry:      "demo/hello:latest",
		Parameters: map[string]string{"git-url": "https://user:s3cret@git.example.org/demo/hello.git", "target-file": "Dockerfile"},
		SourceURL:  "https://user:s3cret@git.example.org/demo/hello.git",
		Commit:     strings.Repeat("c", 40),
		Ref:        "main",
		Parents:    []provenance.Parent{{Ref: "127.0.0.1:5115/demo/base@sha256:" + strings.Repeat("01", 32)}},
		RunURL:     "https://cccp.example.org/runs/42",
		Started:    time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC),
		Finished:   time.Date(2026, 11, 30, 18, 1, 0, 0, time.UTC),
	}
}

func TestStatementRoundTrip(t *testing.T) {
	b := sample()
	st, err := provenance.Statement(b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(st), "s3cret") {
		t.Errorf("statement carries the clone URL's credentials: %s", st)
	}
	var raw map[string]any
	if err := json.Unmarshal(st, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["_type"] != "https://in-toto.io/Statement/v1" || raw["predicateType"] != provenance.PredicateType {
		t.Errorf("_type %v predicateType %v", raw["_type"], raw["predicateType"])
	}
	p, err := provenance.Parse(st)
	if err != nil {
		t.Fatal(err)
	}
	want := provenance.Parsed{
		Subject:   []string{b.Image + "@" + b.Digest},
		BuilderID: b.BuilderID,
		Version:   b.Version,
		Entry:     b.Entry,
		SourceURL: "https://git.example.org/demo/hello.git",
		Commit:    b.Commit,
		Ref:       "main",
		Parents:   []string{b.Parents[0].Ref},
		RunURL:    b.RunURL,
	}
	if !equal(p, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", p, want)
	}
}

func equal(a, b provenance.Parsed) bool {
	return slices.Equal(a.Subject, b.Subject) && slices.Equal(a.Parents, b.Parents) &&
		a.BuilderID == b.BuilderID && a.Version == b.Version && a.Entry == b.Entry && a.SourceURL == b.SourceURL &&
		a.Commit == b.Commit && a.Ref == b.Ref && a.RunURL == b.RunURL
}

func TestStatementRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*provenance.Build)
		want string
	}{
		{"no digest", func(b *provenance.Build) { b.Digest = "" }, "need a repository and a digest"},
		{"no commit", func(b *provenance.Build) { b.Commit = "" }, "commit are required"},
		{"parent by tag", func(b *provenance.Build) { b.Parents = []provenance.Parent{{Ref: "r/base:latest"}} }, "not pinned to a digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sample()
			tc.edit(&b)
			_, err := provenance.Statement(b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseRefusesOtherPredicates(t *testing.T) {
	_, err := provenance.Parse([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"ab"}}],"predicateType":"https://spdx.dev/Document","predicate":{}}`))
	if err == nil || !strings.Contains(err.Error(), "predicate type") {
		t.Errorf("err = %v", err)
	}
}

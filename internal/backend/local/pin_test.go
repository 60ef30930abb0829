package local

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
)

func TestPinFromRewritesOnlyPinnedParents(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	src := "FROM demo/base:latest AS build\nRUN make\nFROM build AS test\nFROM quay.io/other/runtime:2\nCOPY --from=build /out /\n"
	if err := os.WriteFile(df, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := &backend.BuildSpec{
		OwnRegistries: []string{"reg.test:5000"},
		Parents:       []backend.ParentPin{{Repository: "demo/base", Tag: "latest", DigestRef: "reg.test:5000/demo/base@sha256:1"}},
	}
	out := filepath.Join(dir, "Dockerfile.pinned")
	got, bases, err := pinFrom(context.Background(), spec, df, out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got != out {
		t.Fatalf("pinFrom = %q, want the pinned file", got)
	}
	b, _ := os.ReadFile(out)
	want := strings.Replace(src, "FROM demo/base:latest AS build", "FROM reg.test:5000/demo/base@sha256:1 AS build", 1)
	if string(b) != want {
		t.Errorf("pinned Dockerfile:\n%s\nwant:\n%s", b, want)
	}
	wantBases := []backend.Base{{Image: "demo/base:latest", Digest: "sha256:1", Pinned: true}, {Image: "quay.io/other/runtime:2"}}
	if !slices.Equal(bases, wantBases) {
		t.Errorf("bases = %+v, want %+v (an earlier stage is not a base)", bases, wantBases)
	}
}

func TestPinFromLeavesUnpinnedDockerfileAlone(t *testing.T) {
	dir := t.TempDir()
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, bases, err := pinFrom(context.Background(), &backend.BuildSpec{}, df, filepath.Join(dir, "out"), io.Discard)
	if err != nil || got != "" || len(bases) != 1 || bases[0].Image != "scratch" {
		t.Errorf("pinFrom = %q, %+v, %v; want no rewrite and the scratch base", got, bases, err)
	}
}

func TestTailLinesKeepsLastCappedLines(t *testing.T) {
	tl := &tailLines{max: 2}
	io.WriteString(tl, "one\ntwo\nthr")
	io.WriteString(tl, "ee\n"+strings.Repeat("x", 2*maxExplainLine)+"\npartial")
	got := tl.lines()
	want := []string{"three", strings.Repeat("x", maxExplainLine), "partial"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

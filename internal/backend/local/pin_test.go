package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/safefs"
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
	got, bases, err := pinFrom(context.Background(), spec, dir, df, out, io.Discard)
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
	got, bases, err := pinFrom(context.Background(), &backend.BuildSpec{}, dir, df, filepath.Join(dir, "out"), io.Discard)
	if err != nil || got != "" || len(bases) != 1 || bases[0].Image != "scratch" {
		t.Errorf("pinFrom = %q, %+v, %v; want no rewrite and the scratch base", got, bases, err)
	}
}

// A Dockerfile that is a symlink out of the checkout is never read.
func TestPinFromRefusesDockerfileOutsideCheckout(t *testing.T) {
	for _, target := range []string{"/dev/zero", "/etc/passwd"} {
		dir := t.TempDir()
		df := filepath.Join(dir, "Dockerfile")
		if err := os.Symlink(target, df); err != nil {
			t.Fatal(err)
		}
		_, _, err := pinFrom(context.Background(), &backend.BuildSpec{}, dir, df, filepath.Join(dir, "out"), io.Discard)
		if !errors.Is(err, safefs.ErrEscapes) && !strings.Contains(fmt.Sprint(err), "leads outside") {
			t.Errorf("Dockerfile -> %s: pinFrom err = %v, want it refused", target, err)
		}
	}
}

// TestPinFromRefusesAddOfThisHost: buildah fetches an ADD URL itself, as
// root on the host's network, so a Dockerfile could read cccp's own
// listeners or a metadata service into an image anyone pulls.
func TestPinFromRefusesAddOfThisHost(t *testing.T) {
	tests := []struct {
		name, add string
		refused   bool
	}{
		{"loopback", "ADD http://127.0.0.1:5115/v2/_catalog /c", true},
		{"localhost with a flag", "ADD --chown=1:1 http://localhost:8080/api/v1/runs /r", true},
		{"metadata service", "ADD http://169.254.169.254/latest/meta-data/ /m", true},
		{"private network", `ADD ["https://10.1.2.3/artifact.tgz", "/a"]`, true},
		{"ipv6 loopback", "ADD http://[::1]:8080/ /x", true},
		{"a local file", "ADD app.tgz /app", false},
		{"a name that does not resolve here", "ADD https://artifacts.example.invalid/a.tgz /a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			df := filepath.Join(dir, "Dockerfile")
			if err := os.WriteFile(df, []byte("FROM scratch\n"+tt.add+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := pinFrom(context.Background(), &backend.BuildSpec{}, dir, df, filepath.Join(dir, "out"), io.Discard)
			var se *backend.StageError
			refused := errors.As(err, &se) && se.Reason == ReasonForbiddenURL
			if refused != tt.refused {
				t.Errorf("pinFrom(%q) = %v; refused %v, want %v", tt.add, err, refused, tt.refused)
			}
		})
	}
}

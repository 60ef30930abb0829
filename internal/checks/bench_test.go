package checks

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// demoApp builds one app of testdata/demo with buildah (busybox copied in,
// as hack/demo.sh does; FROM rewritten to from when set) and returns the
// checkout and the image.
func demoApp(b *testing.B, app, from string) (dir, image string) {
	b.Helper()
	dir = b.TempDir()
	src := filepath.Join("..", "..", "testdata", "demo", "apps", app)
	entries, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if e.Name() == "Dockerfile" && from != "" {
			data = []byte(strings.Replace(string(data), "FROM demo/base:latest", "FROM "+from, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	testimage.CopyBusybox(b, dir)
	image = fmt.Sprintf("localhost/cccp-bench/%s-%d:t", app, time.Now().UnixNano())
	cmd := exec.Command("buildah", "bud", "--isolation", "oci", "--runtime", "runc", "--pull-never", "-q", "-t", image, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v: %s", app, err, out)
	}
	b.Cleanup(func() { exec.Command("buildah", "rmi", image).Run() })
	return dir, image
}

// BenchmarkTestStage measures the test stage on the demo apps
// (testdata/demo) against the longest of its checks run alone; the bar of
// issue 8 is stage/longest <= 1.25. It also reports the checks run one
// after another, as the stage did before RunStage. The image is local: the
// pull that precedes the checks is not measured.
func BenchmarkTestStage(b *testing.B) {
	testimage.Require(b)
	baseDir, base := demoApp(b, "base", "")
	helloDir, hello := demoApp(b, "hello", base)
	for _, app := range []struct{ name, dir, image string }{{"base", baseDir, base}, {"hello", helloDir, hello}} {
		b.Run(app.name, func(b *testing.B) {
			s := &Suite{NamePrefix: "cccp-bench-testsfast"}
			boxed(b, s, app.image) // as the local backend runs it: in a sandbox box
			spec := StageSpec{Image: app.image, Dockerfile: filepath.Join(app.dir, "Dockerfile"), RepoDir: app.dir, TestScript: "test.sh"}
			ctx := context.Background()
			var stage, longest, sum time.Duration
			for b.Loop() {
				start := time.Now()
				outs, err := s.RunStage(ctx, spec, io.Discard)
				stage += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				for _, o := range outs {
					if o.State == Failed {
						b.Fatalf("%s failed on the demo app: %s", o.Name, o.Summary)
					}
				}
				l, total := alone(b, s, spec)
				longest += l
				sum += total
			}
			n := float64(b.N)
			b.ReportMetric(stage.Seconds()/n, "stage-s")
			b.ReportMetric(longest.Seconds()/n, "longest-check-s")
			b.ReportMetric(sum.Seconds()/n, "one-by-one-s")
			b.ReportMetric(stage.Seconds()/longest.Seconds(), "stage/longest")
		})
	}
}

// alone runs each check of the stage by itself and returns the longest
// time and the sum.
func alone(b *testing.B, s *Suite, spec StageSpec) (longest, sum time.Duration) {
	b.Helper()
	ctx := context.Background()
	checks := map[types.CheckName]func() (Result, error){
		types.CheckLint: func() (Result, error) { return s.lint(spec.Root, spec.Dockerfile, io.Discard) },
		types.CheckCapabilities: func() (Result, error) {
			labels, err := s.Containers.ImageLabels(ctx, spec.Image)
			return Capabilities(labels, io.Discard), err
		},
		types.CheckPackageUpdates: func() (Result, error) { return s.PackageUpdates(ctx, spec.Image, io.Discard) },
		types.CheckRPMVerify:      func() (Result, error) { return s.RPMVerify(ctx, spec.Image, io.Discard) },
		types.CheckLangPackages:   func() (Result, error) { return s.LangPackages(ctx, spec.Image, io.Discard) },
		types.CheckSmoke:          func() (Result, error) { return s.Smoke(ctx, spec.Image, spec.Hold, io.Discard) },
		types.CheckUserScript: func() (Result, error) {
			return s.UserScript(ctx, filepath.Join(spec.RepoDir, spec.TestScript), spec.RepoDir, spec.Image, io.Discard)
		},
	}
	for _, name := range types.Checks {
		start := time.Now()
		if _, err := checks[name](); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		d := time.Since(start)
		sum += d
		longest = max(longest, d)
	}
	return longest, sum
}

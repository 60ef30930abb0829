package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/backend/testreport"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// fakeChecks records what `cccp test` hands to the checks.
type fakeChecks struct {
	spec   local.ImageCheck
	checks []backend.CheckResult
	err    error
}

func (f *fakeChecks) check(_ context.Context, c local.ImageCheck, _ io.Writer) ([]backend.CheckResult, error) {
	f.spec = c
	return f.checks, f.err
}

func TestTestCommand(t *testing.T) {
	const img = "registry.example.com/app/job@sha256:0f1e"
	tests := []struct {
		name       string
		args       []string
		cccpYAML   string
		checks     []backend.CheckResult
		err        error
		wantExit   int // 0, exitChecksFailed, or -1 for an error without results
		wantScript string
	}{
		{name: "all passed, script from cccp.yaml", cccpYAML: "test-script: tests/run.sh\ntest-skip: false\n",
			checks:   []backend.CheckResult{{Name: types.CheckSmoke, State: backend.CheckPassed, Summary: "exited 0"}, {Name: types.CheckUserScript, State: backend.CheckPassed}},
			wantExit: 0, wantScript: "tests/run.sh"},
		{name: "--script overrides cccp.yaml", args: []string{"--script", "ci/other.sh"}, cccpYAML: "test-skip: true\n",
			checks:   []backend.CheckResult{{Name: types.CheckUserScript, State: backend.CheckFailed, Summary: "test script exited 1", Findings: []string{"boom"}, Explain: []string{"+ run", "boom"}}},
			wantExit: exitChecksFailed, wantScript: "ci/other.sh"},
		{name: "the checks could not run", err: errors.New("pull: no such image"), wantExit: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.cccpYAML != "" {
				if err := os.WriteFile(filepath.Join(dir, "cccp.yaml"), []byte(tt.cccpYAML), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			results := filepath.Join(t.TempDir(), "results.json")
			fc := &fakeChecks{checks: tt.checks, err: tt.err}
			cmd := newTestCommand(func(*slog.Logger, func(string) bool) imageChecker { return fc.check })
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetArgs(append([]string{img, "--dir", dir, "--dockerfile", "../../Dockerfile.dev", "--entry", "app/job:latest", "--run", "42", "--results", results}, tt.args...))
			err := cmd.ExecuteContext(t.Context())

			var ee exitError
			switch {
			case tt.wantExit == -1:
				if err == nil || errors.As(err, &ee) {
					t.Fatalf("err = %v, want the checks' error", err)
				}
				if _, serr := os.Stat(results); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("results written although the checks did not run")
				}
				return
			case tt.wantExit == 0 && err != nil:
				t.Fatal(err)
			case tt.wantExit != 0 && (!errors.As(err, &ee) || ee.code != tt.wantExit):
				t.Fatalf("err = %v, want exit %d", err, tt.wantExit)
			}
			if fc.spec.Config.TestScript != tt.wantScript || fc.spec.Config.TestSkip {
				t.Errorf("test-script %q (skip %v), want %q", fc.spec.Config.TestScript, fc.spec.Config.TestSkip, tt.wantScript)
			}
			if want := filepath.Join(dir, "Dockerfile.dev"); fc.spec.Dockerfile != want {
				t.Errorf("Dockerfile %q, want %q (kept inside --dir)", fc.spec.Dockerfile, want)
			}
			f, err := os.Open(results)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rep, err := testreport.Read(f)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Image != img || rep.Entry != "app/job:latest" || rep.RunID != "42" || len(rep.Checks) != len(tt.checks) {
				t.Errorf("report = %+v", rep)
			}
			if got := rep.CheckResults(); !reflect.DeepEqual(got, tt.checks) {
				t.Errorf("checks =\n%+v\nwant\n%+v", got, tt.checks)
			}
		})
	}
}

// cccp test for real: podman runs every check on an image pulled by
// digest from a registry, the repository's test script fails, and the
// results file says so in the form the Jenkins tester reads.
func TestTestCommandWithPodman(t *testing.T) {
	if testing.Short() {
		t.Skip("runs podman; not in -short")
	}
	host := testimage.Registry(t, "", "")
	ref := testimage.PushBusybox(t, host, "", "")
	digest, err := registry.NewClient(registry.ClientConfig{}).Digest(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	image := host + "/busybox@" + digest

	dir := t.TempDir()
	testgit.Write(t, dir, map[string]string{
		"Dockerfile": "FROM " + ref + "\n",
		"cccp.yaml":  "test-script: tests/check.sh\ntest-skip: false\n",
		"tests/check.sh": "#!/bin/sh\necho \"checking $IMAGE_NAME in $CONTAINER_NAME\"\n" +
			"podman exec \"$CONTAINER_NAME\" test -x /bin/busybox || { echo 'cannot exec into the container'; exit 2; }\n" +
			"podman exec \"$CONTAINER_NAME\" test -f /www/index.html || { echo 'no /www/index.html in the image'; exit 1; }\n",
	})
	if err := os.Chmod(filepath.Join(dir, "tests", "check.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(t.TempDir(), "results.json")
	code, stdout, stderr := runCaptured(t, "test", image, "--dir", dir, "--entry", "demo/busybox:latest", "--run", "7", "--results", results)
	if code != exitChecksFailed {
		t.Fatalf("exit %d, want %d (a check failed)\nstdout:\n%s\nstderr:\n%s", code, exitChecksFailed, stdout, stderr)
	}
	f, err := os.Open(results)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := testreport.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[types.CheckName]testreport.Check{}
	for _, c := range rep.Checks {
		byName[c.Name] = c
	}
	if len(byName) != len(types.Checks) {
		t.Errorf("checks %v, want one of each of %v", rep.Checks, types.Checks)
	}
	if c := byName[types.CheckSmoke]; c.State != backend.CheckPassed {
		t.Errorf("smoke = %+v, want passed", c)
	}
	us := byName[types.CheckUserScript]
	if us.State != backend.CheckFailed || us.Summary != "test script exited 1" || !slices.Contains(us.Explain, "no /www/index.html in the image") {
		t.Errorf("user-script = %+v, want failed, explained by the script's own line", us)
	}
	if !strings.Contains(stdout, "checking "+image) {
		t.Errorf("the script's output is not in the log:\n%s", stdout)
	}
}

package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// fakeTools writes executables that print what apk and pip3 print into a
// folder that tests mount at /fake (first on the image's PATH), so the scans
// find something through real podman.
func fakeTools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// The sandbox user's podman mounts it.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	tools := map[string]string{
		"apk":  "#!/bin/sh\necho 'Installed:                                Available:'\necho 'musl-1.2.4-r2                           < 1.2.4-r3'\n",
		"pip3": "#!/bin/sh\necho '[{\"name\": \"requests\", \"version\": \"2.0.0\", \"latest_version\": \"2.32.3\", \"latest_filetype\": \"wheel\"}]'\n",
	}
	for name, body := range tools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// stageRepo writes a checkout: a Dockerfile with lint warnings and a test
// script.
func stageRepo(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile": "from busybox as Build\nMAINTAINER me\nRUN true\n",
		"test.sh":    script,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// oneByOne runs the checks the way the test stage ran them before
// RunStage: one after another, each scan in its own container.
func oneByOne(t *testing.T, s *Suite, spec StageSpec) []Outcome {
	t.Helper()
	ctx := context.Background()
	var log bytes.Buffer
	df, err := os.ReadFile(spec.Dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var out []Outcome
	add := func(name types.CheckName, r Result, err error) { out = append(out, outcomeOf(name, r, err)) }
	add(types.CheckLint, Lint(filepath.Base(spec.Dockerfile), df, &log), nil)
	labels, err := s.Containers.ImageLabels(ctx, spec.Image)
	add(types.CheckCapabilities, Capabilities(labels, &log), err)
	r, err := s.PackageUpdates(ctx, spec.Image, &log)
	add(types.CheckPackageUpdates, r, err)
	r, err = s.RPMVerify(ctx, spec.Image, &log)
	add(types.CheckRPMVerify, r, err)
	r, err = s.LangPackages(ctx, spec.Image, &log)
	add(types.CheckLangPackages, r, err)
	r, err = s.Smoke(ctx, spec.Image, spec.Hold, &log)
	add(types.CheckSmoke, r, err)
	r, err = s.UserScript(ctx, filepath.Join(spec.RepoDir, spec.TestScript), spec.RepoDir, spec.Image, &log)
	add(types.CheckUserScript, r, err)
	return out
}

// blocks splits a stage log into its check blocks, failing the test when a
// line sits outside a block, a block is not closed by its own result line,
// or a marker line shows.
func blocks(t *testing.T, log string) (order []types.CheckName, body map[types.CheckName][]string) {
	t.Helper()
	body = map[types.CheckName][]string{}
	var cur types.CheckName
	for i, l := range strings.Split(strings.TrimRight(log, "\n"), "\n") {
		if strings.Contains(l, "@@cccp") {
			t.Errorf("line %d is a marker line: %q", i+1, l)
		}
		if name, ok := strings.CutPrefix(l, "cccp: ---- "); ok {
			if cur != "" {
				t.Errorf("line %d: block %s starts inside block %s", i+1, name, cur)
			}
			cur = types.CheckName(strings.TrimSuffix(name, " ----"))
			order = append(order, cur)
			continue
		}
		if strings.HasPrefix(l, "cccp: check ") {
			if want := fmt.Sprintf("cccp: check %s: ", cur); !strings.HasPrefix(l, want) {
				t.Errorf("line %d: %q ends block %q", i+1, l, cur)
			}
			cur = ""
			continue
		}
		if cur == "" {
			if i != 0 || !strings.HasPrefix(l, "cccp: running ") {
				t.Errorf("line %d is outside every check's block: %q", i+1, l)
			}
			continue
		}
		body[cur] = append(body[cur], l)
	}
	if cur != "" {
		t.Errorf("block %s is not closed", cur)
	}
	return order, body
}

func TestRunStageSameResultsAsOneByOne(t *testing.T) {
	image := configImage(t, "--env", "PATH=/fake:/bin", "--entrypoint", `["sleep","600"]`, "--cmd", "",
		"--label", "RUN=podman run --privileged IMAGE")
	repo := stageRepo(t, "#!/bin/sh\nset -e\necho \"script sees $CONTAINER_NAME\"\npodman --runtime runc exec \"$CONTAINER_NAME\" cat /etc/passwd | grep -q '^root:'\necho script-done\n")
	s := newSuite(t)
	s.Containers = mountRunner{Runner: boxed(t, s, image), mount: fakeTools(t) + ":/fake:ro"}
	spec := StageSpec{Image: image, Dockerfile: filepath.Join(repo, "Dockerfile"), RepoDir: repo, TestScript: "test.sh", Hold: 2 * time.Second}

	want := oneByOne(t, s, spec)
	var log bytes.Buffer
	got, err := s.RunStage(context.Background(), spec, &log)
	if err != nil {
		t.Fatalf("RunStage: %v\n%s", err, log.String())
	}

	// Every check has something to say, so a mix-up between checks shows.
	for _, o := range want {
		if o.State != Skipped && o.Name != types.CheckSmoke && o.Name != types.CheckUserScript && len(o.Findings) == 0 {
			t.Errorf("one by one, %s found nothing (%s); the test image lost its fake tools?", o.Name, o.Summary)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("RunStage gave %d outcomes, one by one %d\n%s", len(got), len(want), log.String())
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.State != w.State || g.Summary != w.Summary || !slices.Equal(g.Findings, w.Findings) {
			t.Errorf("check %d:\n got %+v\nwant %+v", i, g, w)
		}
	}

	order, body := blocks(t, log.String())
	if !slices.Equal(order, types.Checks) {
		t.Errorf("blocks in order %q, want %q", order, types.Checks)
	}
	// Each tool's output is in its own check's block, and only there.
	for _, tt := range []struct {
		check types.CheckName
		line  string
	}{
		{types.CheckPackageUpdates, "musl-1.2.4-r2                           < 1.2.4-r3"},
		{types.CheckLangPackages, `[{"name": "requests", "version": "2.0.0", "latest_version": "2.32.3", "latest_filetype": "wheel"}]`},
		{types.CheckCapabilities, "label RUN: podman run --privileged IMAGE"},
		{types.CheckUserScript, "script-done"},
		{types.CheckSmoke, "still running after 2s"},
	} {
		for name, lines := range body {
			if has := slices.Contains(lines, tt.line); has != (name == tt.check) {
				t.Errorf("block %s has %q: %v", name, tt.line, has)
			}
		}
	}
	// A scan that failed is explained by its tool's own lines.
	// (busybox's sh runs its own rpm applet before any rpm on PATH, so
	// rpm-verify is skipped here; parseRPMVerify has its own tests.)
	pu := got[slices.IndexFunc(got, func(o Outcome) bool { return o.Name == types.CheckPackageUpdates })]
	if pu.State != Failed || !slices.Equal(pu.Explain, []string{"musl-1.2.4-r2                           < 1.2.4-r3"}) {
		t.Errorf("package-updates = %+v, want failed, explained by apk's own line", pu)
	}
}

func TestRunStageExplainsFailuresWithTheChecksOwnLines(t *testing.T) {
	image := configImage(t, "--entrypoint", `["sh","-c","echo starting up; echo 'fatal: no config at /etc/app.conf' >&2; exit 3"]`, "--cmd", "")
	repo := stageRepo(t, "#!/bin/sh\necho 'checking the answer'\necho 'expected 42, got 41' >&2\nexit 3\n")
	s := newSuite(t)
	boxed(t, s, image)
	var log bytes.Buffer
	got, err := s.RunStage(context.Background(), StageSpec{Image: image, Dockerfile: filepath.Join(repo, "Dockerfile"),
		RepoDir: repo, TestScript: "test.sh", Hold: 30 * time.Second}, &log)
	if err != nil {
		t.Fatalf("RunStage: %v\n%s", err, log.String())
	}
	_, body := blocks(t, log.String())
	tests := []struct {
		check types.CheckName
		want  []string
	}{
		{types.CheckSmoke, []string{"starting up", "fatal: no config at /etc/app.conf"}},
		{types.CheckUserScript, []string{"checking the answer", "expected 42, got 41"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.check), func(t *testing.T) {
			i := slices.IndexFunc(got, func(o Outcome) bool { return o.Name == tt.check })
			if i < 0 {
				t.Fatalf("no outcome for %s", tt.check)
			}
			o := got[i]
			if o.State != Failed || !slices.Equal(o.Explain, tt.want) {
				t.Errorf("%s = %+v\nwant failed, explained by %q\nlog:\n%s", tt.check, o, tt.want, log.String())
			}
			for _, l := range o.Explain {
				if !slices.Contains(body[tt.check], l) {
					t.Errorf("explain line %q is not a line of the %s block", l, tt.check)
				}
			}
		})
	}
	for _, o := range got {
		if o.State != Failed && len(o.Explain) > 0 {
			t.Errorf("%s is %s but explains %q", o.Name, o.State, o.Explain)
		}
	}
}

// TestRunStageOverlapsSmokeAndUserScript proves that the smoke run and the
// user's script run at the same time without timing them: the smoke
// container exits 0 only once the script has touched a file in it, and the
// script passes only if it found the smoke container running. Run one
// after the other, the smoke container gives up (exit 3) and the script
// finds no smoke container.
func TestRunStageOverlapsSmokeAndUserScript(t *testing.T) {
	const wait = 200 // tenths of a second each side waits for the other
	image := configImage(t, "--entrypoint", fmt.Sprintf(`["sh","-c","i=0; while [ ! -f /tmp/seen-by-script ]; do i=$((i+1)); if [ $i -gt %d ]; then echo never seen by the script; exit 3; fi; sleep 0.1; done; echo seen by the script"]`, wait), "--cmd", "")
	s := newSuite(t)
	boxed(t, s, image)
	script := fmt.Sprintf(`#!/bin/sh
i=0
while :; do
  smoke=$(podman ps --filter name=%s-smoke- --format '{{.Names}}' | head -n 1)
  if [ -n "$smoke" ] && podman --runtime runc exec "$smoke" touch /tmp/seen-by-script; then break; fi
  i=$((i+1))
  if [ $i -gt %d ]; then echo "no smoke container to see"; exit 4; fi
  sleep 0.1
done
echo "touched $smoke"
`, s.NamePrefix, wait)
	repo := stageRepo(t, script)
	var log bytes.Buffer
	got, err := s.RunStage(context.Background(), StageSpec{Image: image, Dockerfile: filepath.Join(repo, "Dockerfile"),
		RepoDir: repo, TestScript: "test.sh", Hold: 10 * time.Minute}, &log)
	if err != nil {
		t.Fatalf("RunStage: %v\n%s", err, log.String())
	}
	for _, o := range got {
		switch o.Name {
		case types.CheckSmoke:
			if o.State != Passed || o.Summary != "exited 0" {
				t.Errorf("smoke = %+v, want exited 0 (the script reached it while it ran)\n%s", o, log.String())
			}
		case types.CheckUserScript:
			if o.State != Passed {
				t.Errorf("user-script = %+v, want passed (it found the smoke container)\n%s", o, log.String())
			}
		}
	}
}

func TestProbesWithoutShellSkipEveryScan(t *testing.T) {
	testimage.Require(t)
	// An image with busybox but no /bin/sh.
	name := fmt.Sprintf("localhost/cccp-test/noshell-%d:t", time.Now().UnixNano())
	out, err := exec.Command("buildah", "from", "scratch").Output()
	if err != nil {
		t.Fatalf("buildah from scratch: %v", err)
	}
	ctr := strings.TrimSpace(string(out))
	defer exec.Command("buildah", "rm", ctr).Run()
	if out, err := exec.Command("buildah", "copy", ctr, testimage.BusyboxBinary(t), "/busybox").CombinedOutput(); err != nil {
		t.Fatalf("buildah copy: %v: %s", err, out)
	}
	if out, err := exec.Command("buildah", "commit", "--quiet", ctr, name).CombinedOutput(); err != nil {
		t.Fatalf("buildah commit: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("buildah", "rmi", name).Run() })

	s := newSuite(t)
	logs := []*bytes.Buffer{{}, {}, {}}
	res := s.probes(context.Background(), name, scans, []io.Writer{logs[0], logs[1], logs[2]})
	for i, r := range res {
		if r.err != nil || !r.Skipped || !strings.Contains(r.Summary, "no /bin/sh") {
			t.Errorf("%s = %+v, %v\nlog: %s", scans[i].name, r.Result, r.err, logs[i])
		}
	}
}

func TestBlockKeepsHeadAndTailOfEndlessOutput(t *testing.T) {
	var all strings.Builder
	for i := 0; all.Len() < 3<<20; i++ {
		fmt.Fprintf(&all, "line %d\n", i)
	}
	text := all.String()
	lastLines := lines(text)
	tests := []struct {
		name  string
		chunk int
	}{
		{"byte by byte", 1},
		{"4 KiB writes", 4 << 10},
		{"writes larger than the tail", 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBlock(context.Background(), types.CheckUserScript)
			for i := 0; i < len(text); i += tt.chunk {
				b.Write([]byte(text[i:min(i+tt.chunk, len(text))]))
				if cap(b.tail) > 2*blockTail+tt.chunk {
					t.Fatalf("tail grew to %d bytes", cap(b.tail))
				}
			}
			got := b.text()
			if len(got) > blockHead+blockTail+100 {
				t.Errorf("kept %d bytes, want at most head %d + tail %d", len(got), blockHead, blockTail)
			}
			gl := lines(got)
			gap := slices.IndexFunc(gl, func(l string) bool { return strings.HasPrefix(l, "cccp: ... ") })
			if gap < 0 {
				t.Fatalf("no note of the left-out output")
			}
			var dropped int
			fmt.Sscanf(gl[gap], "cccp: ... %d bytes", &dropped)
			if kept := len(got) - len(gl[gap]) - 1; kept+dropped != len(text) {
				t.Errorf("kept %d + left out %d != written %d", kept, dropped, len(text))
			}
			// Whole lines on both sides of the gap, the very first and last among them.
			if !slices.Equal(gl[:gap], lastLines[:gap]) {
				t.Errorf("head is not the first %d lines", gap)
			}
			tail := gl[gap+1:]
			if !slices.Equal(tail, lastLines[len(lastLines)-len(tail):]) {
				t.Errorf("tail is not the last %d lines (starts %q)", len(tail), tail[0])
			}
		})
	}
}

func TestExplain(t *testing.T) {
	const id = "0ea36da61edcd70644e9708f3173fc9b955d8ed0f03d3158fd0f10f9d1dbdfdb"
	tests := []struct {
		name     string
		out      []string
		findings []string
		want     []string
	}{
		{name: "findings as printed, in output order",
			out:      []string{"Installed:    Available:", "musl-1.2.4-r2     < 1.2.4-r3", "zlib-1     < 2"},
			findings: []string{"zlib-1 < 2", "musl-1.2.4-r2 < 1.2.4-r3"},
			want:     []string{"musl-1.2.4-r2     < 1.2.4-r3", "zlib-1     < 2"}},
		{name: "no finding printed: the last own lines",
			out:  []string{id, "$ IMAGE_NAME=x CONTAINER_NAME=y ./test.sh", "a", "", "b", "c", "d", "cccp: ... 5 bytes of output left out ..."},
			want: []string{"b", "c", "d"}},
		{name: "only cccp's lines: nothing",
			out:  []string{id, "$ IMAGE_NAME=x CONTAINER_NAME=y ./test.sh"},
			want: nil},
		{name: "a repeated finding takes the next line",
			out:      []string{"x", "dup", "y", "dup"},
			findings: []string{"dup", "dup"},
			want:     []string{"dup", "dup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := explain(tt.out, tt.findings); !slices.Equal(got, tt.want) {
				t.Errorf("explain = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogProbeDropsMarkers(t *testing.T) {
	var log bytes.Buffer
	logProbe("@@cccp dnf\nfoo.x86_64 1.2 baseos\n@@cccp exit-dnf 100\n@@cccp apk\n@@cccp exit-apk 0\n@@cccp end\ntail without newline", &log)
	want := "foo.x86_64 1.2 baseos\n(dnf exited 100)\ntail without newline"
	if log.String() != want {
		t.Errorf("log = %q, want %q", log.String(), want)
	}
}

// TestRunStageInterrupted ends the stage while the smoke run holds:
// RunStage returns ctx's error, reports the checks that had ended (the
// skipped user script, which comes after the smoke run in the log) and no
// result for the one it cut short, and leaves no container behind
// (newSuite's cleanup looks).
func TestRunStageInterrupted(t *testing.T) {
	image := configImage(t, "--entrypoint", `["sleep","600"]`, "--cmd", "")
	repo := stageRepo(t, "#!/bin/sh\nexit 0\n")
	s := newSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var log bytes.Buffer
	got, err := s.RunStage(ctx, StageSpec{Image: image, Dockerfile: filepath.Join(repo, "Dockerfile"),
		RepoDir: repo, TestScript: "test.sh", TestSkip: true, Hold: 10 * time.Minute}, &log)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RunStage = %v, want the deadline's error\n%s", err, log.String())
	}
	var names []types.CheckName
	for _, o := range got {
		names = append(names, o.Name)
	}
	if slices.Contains(names, types.CheckSmoke) || !slices.Contains(names, types.CheckLint) || !slices.Contains(names, types.CheckUserScript) {
		t.Errorf("outcomes for %q, want lint and the skipped user-script but not the interrupted smoke\n%s", names, log.String())
	}
	if strings.Contains(log.String(), "cccp: check smoke:") {
		t.Errorf("the log gives the interrupted smoke run a result:\n%s", log.String())
	}
}

// TestLintReadsABoundedRegularDockerfile: the repository controls the
// Dockerfile, and a symlink to /dev/zero (out of the checkout) or a huge
// file must not grow cccp's memory.
func TestLintReadsABoundedRegularDockerfile(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero")); err != nil {
		t.Fatal(err)
	}
	big := "FROM busybox\n" + strings.Repeat("# padding\n", dockerfileMax/10)
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok"), []byte("FROM busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		wantErr string
	}{
		{"zero", "leads outside the repository"},
		{"big", "file too large"},
		{"ok", ""},
	}
	s := &Suite{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var log bytes.Buffer
			r, err := s.lint(dir, filepath.Join(dir, tt.file), &log)
			if tt.wantErr == "" {
				if err != nil || !r.Passed {
					t.Errorf("lint = %+v, %v", r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(log.String(), tt.wantErr) {
				t.Errorf("lint = %+v, %v; want an error with %q, in the log too", r, err, tt.wantErr)
			}
		})
	}
}

// TestRunStageOnlyRunsTheChecksAsked is a rescan's test stage: only the
// scans named, nothing else run or reported, and no checkout needed.
func TestRunStageOnlyRunsTheChecksAsked(t *testing.T) {
	image := configImage(t, "--env", "PATH=/fake:/bin", "--entrypoint", `["sleep","600"]`, "--cmd", "")
	s := newSuite(t)
	s.Containers = mountRunner{Runner: boxed(t, s, image), mount: fakeTools(t) + ":/fake:ro"}
	only := []types.CheckName{types.CheckPackageUpdates, types.CheckLangPackages}
	var log bytes.Buffer
	got, err := s.RunStage(context.Background(), StageSpec{Image: image, Only: only}, &log)
	if err != nil {
		t.Fatalf("RunStage: %v\n%s", err, log.String())
	}
	var names []types.CheckName
	for _, o := range got {
		names = append(names, o.Name)
		if o.State != Failed || len(o.Findings) == 0 {
			t.Errorf("%s: %s %q %q, want failed with the fake tool's update", o.Name, o.State, o.Summary, o.Findings)
		}
	}
	if !slices.Equal(names, only) {
		t.Errorf("outcomes %q, want %q\n%s", names, only, log.String())
	}
	if order, _ := blocks(t, log.String()); !slices.Equal(order, only) {
		t.Errorf("log blocks %q, want %q", order, only)
	}
	if NeedsSource(only) || !NeedsSource(nil) || !NeedsSource([]types.CheckName{types.CheckLint}) {
		t.Errorf("NeedsSource: the scans need no checkout, every check and the lint do")
	}
}

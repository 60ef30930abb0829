package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gh "github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/bot/github/githubtest"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
)

// End to end: the real cccp binary serves a GitHub App's webhooks, runs the
// real local pipeline (git, buildah, podman, the embedded registry) and
// reports to a GitHub API double that records every call. The push is
// GitHub's published example (testdata/github/push-event-5.json) with its
// head commit replaced by the test repository's; git's url.insteadOf sends
// the example's https://github.com/Codertocat/Hello-World to a local
// repository, so the payload's URLs stay as GitHub sent them.

type e2e struct {
	t       *testing.T
	bin     string
	config  string
	env     []string
	base    string // cccp's URL
	repo    string // the application repository
	gh      *githubtest.Server
	cmd     *exec.Cmd
	payload map[string]any
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with buildah and podman; not in -short")
	}
	testimage.Require(t)
	dir := t.TempDir()
	x := &e2e{t: t, gh: githubtest.New(t)}

	x.bin = filepath.Join(dir, "cccp")
	if out, err := exec.Command("go", "build", "-o", x.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build cccp: %v: %s", err, out)
	}

	// The application repository, where the example push's URL leads.
	x.repo = filepath.Join(dir, "repos", "Codertocat", "Hello-World")
	if err := os.MkdirAll(x.repo, 0o755); err != nil {
		t.Fatal(err)
	}
	testimage.CopyBusybox(t, x.repo)
	writeFile(t, filepath.Join(x.repo, "Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sleep\", \"3600\"]\n")
	// The user's test script fails if any secret of cccp's environment
	// reached it: scripts come from the repositories being built.
	writeFile(t, filepath.Join(x.repo, "cccp.yaml"), "job-id: hello-world\ntest-skip: false\ntest-script: test.sh\n")
	writeFile(t, filepath.Join(x.repo, "test.sh"), "#!/bin/sh\nif env | grep -q '^CCCP_'; then echo 'cccp secrets leaked into the test script' >&2; exit 1; fi\necho clean\n")
	if err := os.Chmod(filepath.Join(x.repo, "test.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	testgit.Init(t, x.repo, "master")
	testgit.Commit(t, x.repo, "first")
	gitconfig := filepath.Join(dir, "gitconfig")
	writeFile(t, gitconfig, fmt.Sprintf("[url \"file://%s/\"]\n\tinsteadOf = https://github.com/\n", filepath.Join(dir, "repos")))

	writeFile(t, filepath.Join(dir, "index", "index.d", "codertocat.yaml"), `Projects:
  - id: 1
    app-id: codertocat
    job-id: hello-world
    git-url: https://github.com/Codertocat/Hello-World
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: octocat@github.com
    depends-on: null
`)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "app.pem")
	writeFile(t, pemFile, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))

	listen := freeAddr(t)
	x.base = "http://" + listen
	x.config = filepath.Join(dir, "config.yaml")
	writeFile(t, x.config, fmt.Sprintf(`listen: %s
data: %s
index:
  path: %s
registry:
  address: %s
github:
  app_id: 1
  private_key_file: %s
  base_url: %s
`, listen, filepath.Join(dir, "data"), filepath.Join(dir, "index"), freeAddr(t), pemFile, x.gh.APIURL()))
	x.env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+gitconfig, "CCCP_GITHUB_WEBHOOK_SECRET=s3cret")

	data, err := os.ReadFile("../../testdata/github/push-event-5.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &x.payload); err != nil {
		t.Fatal(err)
	}
	return x
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs `cccp serve` and waits until it is ready.
func (x *e2e) start() {
	x.t.Helper()
	x.cmd = exec.Command(x.bin, "serve", "--config", x.config)
	x.cmd.Env = x.env
	var logs bytes.Buffer
	x.cmd.Stdout, x.cmd.Stderr = &logs, &logs
	if err := x.cmd.Start(); err != nil {
		x.t.Fatal(err)
	}
	cmd := x.cmd
	x.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if x.t.Failed() {
			x.t.Logf("cccp serve output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(x.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	x.t.Fatalf("cccp serve not ready:\n%s", logs.String())
}

// kill ends cccp serve at once, as a crash would.
func (x *e2e) kill() {
	x.cmd.Process.Signal(syscall.SIGKILL)
	x.cmd.Wait()
}

// push sends the example push, signed, for commit sha; it returns the
// HTTP status.
func (x *e2e) push(sha, delivery string) int {
	x.t.Helper()
	x.payload["after"] = sha
	if hc, ok := x.payload["head_commit"].(map[string]any); ok {
		hc["id"] = sha
	}
	body, err := json.Marshal(x.payload)
	if err != nil {
		x.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, x.base+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", gh.Sign([]byte("s3cret"), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		x.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// completed waits for the check run of sha to complete.
func (x *e2e) completed(sha string) githubtest.CheckRun {
	x.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		for _, cr := range x.gh.CheckRuns() {
			if cr.HeadSHA == sha && cr.Status == "completed" {
				return cr
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	x.t.Fatalf("no completed check run for %s; calls: %v", sha, x.gh.Calls())
	return githubtest.CheckRun{}
}

// runsOf lists cccp's runs of the project for commit sha through its API.
func (x *e2e) runsOf(sha string) []map[string]any {
	x.t.Helper()
	resp, err := http.Get(x.base + "/api/v1/projects/codertocat/hello-world:latest/runs?limit=100")
	if err != nil {
		x.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Runs []map[string]any `json:"runs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		x.t.Fatal(err)
	}
	var runs []map[string]any
	for _, r := range out.Runs {
		if r["commit"] == sha {
			runs = append(runs, r)
		}
	}
	return runs
}

func TestEndToEndPushToCompletedCheck(t *testing.T) {
	x := newE2E(t)
	x.start()
	sha := testgit.Run(t, x.repo, "rev-parse", "HEAD")
	if code := x.push(sha, "e2e-push-1"); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d, want 202", code)
	}
	cr := x.completed(sha)
	if cr.Name != "cccp/codertocat/hello-world:latest" || cr.Conclusion != "success" {
		t.Errorf("check run %q: conclusion %q, want cccp/codertocat/hello-world:latest success", cr.Name, cr.Conclusion)
	}
	runs := x.runsOf(sha)
	if len(runs) != 1 || runs[0]["state"] != "passed" {
		t.Fatalf("runs for %s: %v, want one passed", sha, runs)
	}
	if want := x.base + "/runs/" + fmt.Sprint(runs[0]["id"]); cr.DetailsURL != want {
		t.Errorf("details_url = %q, want %q", cr.DetailsURL, want)
	}
	// cccp serve maps root of the build's RUN steps to the build user's
	// subordinate ids, as `cccp run` does, on a machine that has the user
	// (hack/install-deps.sh makes it): never the host's root by default.
	if _, err := user.Lookup(DefaultBuildUser); err == nil {
		resp, err := http.Get(x.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(metrics, []byte("\ncccp_build_userns_enabled 1\n")) {
			t.Errorf("cccp serve runs builds' RUN steps as the host's root (%s has a build user):\n%s",
				DefaultBuildUser, grepLines(string(metrics), "cccp_build_userns"))
		}
	} else if os.Getenv("CCCP_TEST_REQUIRE_CONTAINERS") == "1" {
		t.Errorf("no build user %s on this machine: %v (hack/install-deps.sh makes it)", DefaultBuildUser, err)
	}
	// A redelivery of the same delivery ID is acknowledged, not run again.
	if code := x.push(sha, "e2e-push-1"); code != http.StatusOK {
		t.Errorf("redelivery answered %d, want 200", code)
	}
	time.Sleep(2 * time.Second)
	if runs := x.runsOf(sha); len(runs) != 1 {
		t.Errorf("after a redelivery: %d runs, want 1", len(runs))
	}
}

func TestEndToEndCrashAfterAcceptRunsExactlyOnce(t *testing.T) {
	x := newE2E(t)
	x.start()
	writeFile(t, filepath.Join(x.repo, "VERSION"), "2\n")
	sha := testgit.Commit(t, x.repo, "second")
	if code := x.push(sha, "e2e-crash-1"); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d, want 202", code)
	}
	// The delivery is stored; cccp dies before (or while) working it.
	x.kill()
	x.start()
	cr := x.completed(sha)
	if cr.Conclusion != "success" {
		t.Errorf("check run conclusion %q, want success", cr.Conclusion)
	}
	// Give a duplicate a chance to show up before counting.
	time.Sleep(3 * time.Second)
	runs := x.runsOf(sha)
	if len(runs) != 1 {
		t.Fatalf("runs for %s after the crash: %d (%v), want exactly 1", sha, len(runs), runs)
	}
	var created int
	for _, c := range x.gh.Calls() {
		if c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/check-runs") && strings.Contains(c.Body, sha) {
			created++
		}
	}
	if created != 1 {
		t.Errorf("check runs created for %s: %d, want 1 (found again after the restart)", sha, created)
	}
	_ = context.Background
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	gh "github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/bot/github/githubtest"
)

// TestKillNineUnderLoad: the real `cccp serve` is killed with SIGKILL at
// random moments while a mixed load of signed pushes and pull requests
// arrives (a bounded number of rounds). A sender sends again what was not
// answered, as forges do. After a last start, every accepted delivery has
// been acted on exactly once (one run of the entry for its commit, or its
// commit folded into one newer queued run) and every commit's report has
// been posted (a completed check run for it).
// Clones are pointed at a missing folder, so each run fails at once
// without building: the test is about the bot, not buildah.
func TestKillNineUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the real cccp serve; not in -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cccp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build cccp: %v: %s", err, out)
	}
	api := githubtest.New(t)
	api.Permissions["Codertocat"] = "write"
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
	gitconfig := filepath.Join(dir, "gitconfig")
	writeFile(t, gitconfig, "[url \"file:///nonexistent-cccp-crash-test/\"]\n\tinsteadOf = https://github.com/\n")
	pemFile := filepath.Join(dir, "app.pem")
	writeFile(t, pemFile, string(githubtest.AppKey(t)))
	listen := freeAddr(t)
	base := "http://" + listen
	config := filepath.Join(dir, "config.yaml")
	writeFile(t, config, fmt.Sprintf("listen: %s\ndata: %s\nindex:\n  path: %s\nregistry:\n  address: %s\ngithub:\n  app_id: 1\n  private_key_file: %s\n  base_url: %s\n",
		listen, filepath.Join(dir, "data"), filepath.Join(dir, "index"), freeAddr(t), pemFile, api.APIURL()))
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL="+gitconfig, "CCCP_GITHUB_WEBHOOK_SECRET=s3cret")

	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--config", config)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return cmd
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("cccp serve not ready:\n%s", logs.String())
		return nil
	}
	defer func() {
		if t.Failed() {
			t.Logf("cccp serve output:\n%s", logs.String())
		}
	}()

	read := func(name string) map[string]any {
		raw, err := os.ReadFile("../../testdata/github/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	type delivery struct {
		id, event, sha string
		body           []byte
	}
	var all []delivery
	for i := range 36 {
		sha := fmt.Sprintf("%040x", 0xc0ffee0000+i)
		var d delivery
		if i%3 == 2 { // a pull request of a writer
			m := read("pull_request-opened-1.json")
			pr := m["pull_request"].(map[string]any)
			m["number"], pr["number"] = float64(100+i), float64(100+i)
			pr["head"].(map[string]any)["sha"] = sha
			d = delivery{id: fmt.Sprint("crash-pr-", i), event: "pull_request", sha: sha}
			d.body, _ = json.Marshal(m)
		} else {
			m := read("push-event-5.json")
			m["after"] = sha
			d = delivery{id: fmt.Sprint("crash-push-", i), event: "push", sha: sha}
			d.body, _ = json.Marshal(m)
		}
		all = append(all, d)
	}
	send := func(d delivery) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/github", bytes.NewReader(d.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", d.event)
		req.Header.Set("X-GitHub-Delivery", d.id)
		req.Header.Set("X-Hub-Signature-256", gh.Sign([]byte("s3cret"), d.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0 // killed while answering: not accepted, sent again
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	var mu sync.Mutex
	accepted := map[string]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	next := 0
	for round := 0; round < 4; round++ {
		cmd := start()
		// Senders in parallel; the kill comes at a random moment.
		var wg sync.WaitGroup
		batch := all[next:min(next+12, len(all))]
		next += len(batch)
		var todo []delivery
		for _, d := range all[:next-len(batch)] {
			mu.Lock()
			if !accepted[d.id] {
				todo = append(todo, d)
			}
			mu.Unlock()
		}
		todo = append(todo, batch...)
		for _, d := range todo {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
				if code := send(d); code == http.StatusAccepted || code == http.StatusOK {
					mu.Lock()
					accepted[d.id] = true
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		wg.Wait()
	}
	// The last start: what was never answered is sent again.
	cmd := start()
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	for _, d := range all {
		if !accepted[d.id] {
			if code := send(d); code != http.StatusAccepted && code != http.StatusOK {
				t.Fatalf("%s = %d after the last start", d.id, code)
			}
		}
	}

	// Every delivery: one run for its commit, and a completed check run.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		missing := []string{}
		done := map[string]bool{}
		for _, cr := range api.CheckRuns() {
			if cr.Status == "completed" {
				done[cr.HeadSHA] = true
			}
		}
		for _, d := range all {
			if !done[d.sha] {
				missing = append(missing, d.id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed check run for %d deliveries: %v", len(missing), missing)
		}
		time.Sleep(250 * time.Millisecond)
	}
	resp, err := http.Get(base + "/api/v1/projects/codertocat/hello-world:latest/runs?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Runs []struct {
			Commit string `json:"commit"`
			Folded []struct {
				Cause struct {
					Commit string `json:"commit"`
				} `json:"cause"`
			} `json:"folded"`
		} `json:"runs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	// A delivery's commit has its own run, or was folded into a queued run
	// of the same branch or pull request that a newer push then took over
	// (pipeline.Runner.Enqueue): exactly one of the two, exactly once.
	runs, requests := map[string]int{}, 0
	for _, r := range out.Runs {
		runs[r.Commit]++
		requests++
		for _, f := range r.Folded {
			runs[f.Cause.Commit]++
			requests++
		}
	}
	for _, d := range all {
		if runs[d.sha] != 1 {
			t.Errorf("%s: %d runs or folds of %s, want exactly 1", d.id, runs[d.sha], d.sha[:12])
		}
	}
	if requests != len(all) {
		t.Errorf("%d runs and folds for %d deliveries", requests, len(all))
	}
}

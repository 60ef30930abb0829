package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
)

const testSecret = "s3cret"

// ghExamples holds GitHub's published webhook examples
// (@octokit/webhooks-examples 7.6.1, see its README.md).
const ghExamples = "../testdata/github"

// ghPayload reads one GitHub example, applying edit to its JSON (for cases
// the examples lack: a command comment on a pull request, a fork...).
func ghPayload(t testing.TB, file string, edit func(m map[string]any)) (http.Header, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(ghExamples, file))
	if err != nil {
		t.Fatalf("example payload: %v", err)
	}
	body := raw
	if edit != nil {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		if body, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	kind, _, _ := strings.Cut(file, "-")
	h := http.Header{}
	h.Set("X-GitHub-Event", kind)
	h.Set("Content-Type", "application/json")
	h.Set("X-Hub-Signature-256", github.Sign([]byte(testSecret), body))
	return h, body
}

// ghEvent parses an example with the real GitHub parser.
func ghEvent(t testing.TB, file, delivery string, edit func(m map[string]any)) *event.Event {
	t.Helper()
	h, body := ghPayload(t, file, edit)
	h.Set("X-GitHub-Delivery", delivery)
	ev, err := ghWebhook(t).Parse(h, body)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return ev
}

func ghWebhook(t testing.TB) *github.Webhook {
	wh, err := github.NewWebhook([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// obj walks a decoded JSON object.
func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

func entry(app, job, url, branch string) *index.Entry {
	return &index.Entry{AppID: app, JobID: job, GitURL: url, GitBranch: branch, TargetFile: "Dockerfile", DesiredTag: "latest"}
}

// The examples' repository: Codertocat/Hello-World on github.com.
var helloEntries = []*index.Entry{
	entry("hello", "web", "https://github.com/Codertocat/Hello-World", "master"),
	entry("hello", "cli", "git@github.com:codertocat/hello-world.git", "master"),
	entry("hello", "next", "https://github.com/Codertocat/Hello-World.git", "next"),
	entry("other", "app", "https://github.com/Codertocat/Hello-World-2", "master"),
}

type testBot struct {
	*Bot
	db    *store.DB
	path  string
	forge *fakeForge
	pipe  *fakePipeline
	now   time.Time
}

func openDB(t testing.TB, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newTestBot builds a Bot over a real bbolt file, the real GitHub webhook
// verifier and parser, a recording forge double and a pipeline double
// that stores its runs in the same file.
func newTestBot(t testing.TB, mod func(*Config)) *testBot {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cccp.db")
	db := openDB(t, path)
	t.Cleanup(func() { db.Close() })
	return newTestBotOn(t, db, path, newFakeForge(), mod)
}

func newTestBotOn(t testing.TB, db *store.DB, path string, forge *fakeForge, mod func(*Config)) *testBot {
	t.Helper()
	tb := &testBot{db: db, path: path, forge: forge, pipe: &fakePipeline{db: db},
		now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{
		Store:    db,
		Pipeline: tb.pipe,
		Forges:   map[string]Forge{event.GitHub: {Webhook: ghWebhook(t), Client: forge, Secret: testSecret}},
		Entries:  func() []*index.Entry { return helloEntries },
		BaseURL:  "https://cccp.example/",
		Masker:   redact.NewMasker("hunter2-token"),
		Now:      func() time.Time { return tb.now },
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb.Bot = b
	tb.pipe.entries = cfg.Entries
	tb.pipe.observe = b.Observe
	return tb
}

// report renders and sends everything pending, as the reporter and outbox
// goroutines do.
func (tb *testBot) report(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	tb.rep.flush(ctx)
	tb.sendDue(ctx)
}

func (tb *testBot) runs(t testing.TB) []*store.Run {
	t.Helper()
	rs, err := tb.db.Runs(context.Background(), store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// finishAll moves every stored run to state, as the pipeline would.
func (tb *testBot) finishAll(t testing.TB, state store.State) {
	t.Helper()
	for _, r := range tb.runs(t) {
		tb.pipe.finish(context.Background(), r.ID, state)
	}
}

func post(t testing.TB, h http.Handler, path string, hdr http.Header, body []byte) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header = hdr.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// mustJSON decodes one example.
func mustJSON(t testing.TB, file string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(ghExamples, file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

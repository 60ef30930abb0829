package bot

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/store"
)

func pending(t testing.TB, db *store.DB) []string {
	t.Helper()
	ds, err := db.PendingDeliveries(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.Forge+"/"+d.ID)
	}
	return ids
}

func TestNewRefuses(t *testing.T) {
	db := openDB(t, t.TempDir()+"/db")
	defer db.Close()
	base := func() Config {
		return Config{Store: db, Pipeline: &fakePipeline{db: db}, Entries: noEntries,
			Forges: map[string]Forge{event.GitHub: {Webhook: ghWebhook(t), Client: newFakeForge(), Secret: testSecret}}}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"forge without a secret", func(c *Config) {
			c.Forges = map[string]Forge{event.GitHub: {Webhook: ghWebhook(t), Client: newFakeForge()}}
		}, event.ErrNoSecret},
		{"no forge", func(c *Config) { c.Forges = nil }, ErrConfig},
		{"unknown forge", func(c *Config) {
			c.Forges = map[string]Forge{"bitbucket": {Webhook: ghWebhook(t), Client: newFakeForge(), Secret: "x"}}
		}, ErrConfig},
		{"index without a checker", func(c *Config) { c.Index = IndexRepo{Forge: event.GitHub, FullName: "org/index"} }, ErrConfig},
		{"no store", func(c *Config) { c.Store = nil }, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mod(&cfg)
			if _, err := New(cfg); !errors.Is(err, tt.want) {
				t.Errorf("New = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestIngest drives the webhook endpoint with the real signed push example.
func TestIngest(t *testing.T) {
	tb := newTestBot(t, func(c *Config) { c.MaxBody = 64 << 10 })
	hdr, body := ghPayload(t, "push-event-5.json", nil)
	with := func(k, v string) http.Header { h := hdr.Clone(); h.Set(k, v); return h }

	steps := []struct {
		name        string
		method      string
		hdr         http.Header
		body        []byte
		wantCode    int
		wantPending []string
	}{
		{"wrong signature: refused, nothing stored", "POST",
			with("X-Hub-Signature-256", "sha256=00"+strings.Repeat("ab", 31)), body, 401, nil},
		{"no signature: refused", "POST", func() http.Header { h := hdr.Clone(); h.Del("X-Hub-Signature-256"); return h }(),
			body, 401, nil},
		{"body changed after signing: refused", "POST", with("X-GitHub-Delivery", "d0"),
			bytes.Replace(body, []byte("master"), []byte("mister"), 1), 401, nil},
		{"signed: accepted and stored", "POST", with("X-GitHub-Delivery", "d1"), body, 202, []string{"github/d1"}},
		{"redelivered: duplicate", "POST", with("X-GitHub-Delivery", "d1"), body, 200, []string{"github/d1"}},
		{"too large: 413", "POST", with("X-GitHub-Delivery", "d2"), bytes.Repeat([]byte(" "), 65<<10), 413, []string{"github/d1"}},
		{"GET: 405", "GET", hdr, nil, 405, []string{"github/d1"}},
		{"no delivery header: ID from the body", "POST", hdr, body, 202, []string{"github/d1", "github/" + event.BodyID(body)}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			req := httptest.NewRequest(s.method, "/webhooks/github", bytes.NewReader(s.body))
			req.Header = s.hdr
			rec := httptest.NewRecorder()
			tb.ServeHTTP(rec, req)
			if rec.Code != s.wantCode {
				t.Errorf("code = %d (%s), want %d", rec.Code, rec.Body, s.wantCode)
			}
			if got := pending(t, tb.db); strings.Join(got, ",") != strings.Join(s.wantPending, ",") {
				t.Errorf("pending = %v, want %v", got, s.wantPending)
			}
		})
	}
	t.Run("stored headers hold no signature", func(t *testing.T) {
		ds, _ := tb.db.PendingDeliveries(context.Background(), 0, 0)
		for _, d := range ds {
			for k := range d.Headers {
				if strings.Contains(strings.ToLower(k), "signature") {
					t.Errorf("delivery %s stored header %s", d.ID, k)
				}
			}
		}
	})
	t.Run("metrics count by result", func(t *testing.T) {
		rec := httptest.NewRecorder()
		tb.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		for _, want := range []string{
			`cccp_webhook_deliveries_total{forge="github",result="accepted"} 2`,
			`cccp_webhook_deliveries_total{forge="github",result="duplicate"} 1`,
			`cccp_webhook_deliveries_total{forge="github",result="refused"} 3`,
			`cccp_webhook_deliveries_total{forge="github",result="too_large"} 1`,
			`cccp_webhook_ingest_seconds_count{forge="github"} 3`,
		} {
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// runBot runs the dispatcher until every delivery is finished, then stops.
func runBot(t testing.TB, tb *testBot) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Run(ctx) }()
	<-tb.ready
	deadline := time.Now().Add(10 * time.Second)
	for len(pending(t, tb.db)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still pending: %v", pending(t, tb.db))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestDuplicateDeliveryRunsOnce: a redelivered ID is acknowledged and does
// not create a second run.
func TestDuplicateDeliveryRunsOnce(t *testing.T) {
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return helloEntries[:1] }
	})
	hdr, body := ghPayload(t, "push-event-5.json", nil)
	hdr.Set("X-GitHub-Delivery", "same")
	srv := httptest.NewServer(tb)
	defer srv.Close()
	var codes []int
	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/webhooks/github", bytes.NewReader(body))
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 202 || codes[1] != 200 || codes[2] != 200 {
		t.Errorf("codes = %v, want 202 200 200", codes)
	}
	runBot(t, tb)
	if runs := tb.runs(t); len(runs) != 1 || runs[0].Cause.DeliveryID != "same" {
		t.Errorf("runs = %d, want 1 of delivery same", len(runs))
	}
}

// TestCrashRestart: deliveries accepted by one process are processed by
// the next exactly once, including one that was routed but not finished.
func TestCrashRestart(t *testing.T) {
	path := t.TempDir() + "/cccp.db"
	entries := func(c *Config) { c.Entries = func() []*index.Entry { return helloEntries[:2] } }

	// Process 1 accepts two pushes, then dies before its dispatcher ran.
	db := openDB(t, path)
	tb := newTestBotOn(t, db, path, newFakeForge(), entries)
	for _, id := range []string{"a", "b"} {
		hdr, body := ghPayload(t, "push-event-5.json", func(m map[string]any) { m["after"] = strings.Repeat(id, 40) })
		hdr.Set("X-GitHub-Delivery", id)
		if code, msg := post(t, tb, "/webhooks/github", hdr, body); code != 202 {
			t.Fatalf("post %s = %d %s", id, code, msg)
		}
	}
	// Delivery a was routed (its runs created) but the crash came before
	// FinishDelivery.
	ds, _ := db.PendingDeliveries(context.Background(), 0, 0)
	hdr := http.Header{}
	for k, v := range ds[0].Headers {
		hdr.Set(k, v)
	}
	ev, err := ghWebhook(t).Parse(hdr, ds[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	ev.DeliveryID = ds[0].ID
	if err := tb.route(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Process 2 starts on the same file.
	db2 := openDB(t, path)
	defer db2.Close()
	tb2 := newTestBotOn(t, db2, path, newFakeForge(), entries)
	if got := pending(t, db2); len(got) != 2 {
		t.Fatalf("pending after restart = %v, want both", got)
	}
	runBot(t, tb2)

	count := map[string]int{}
	for _, r := range tb2.runs(t) {
		count[r.Cause.DeliveryID+" "+r.Project]++
	}
	want := map[string]int{"a hello/web:latest": 1, "a hello/cli:latest": 1, "b hello/web:latest": 1, "b hello/cli:latest": 1}
	if len(count) != len(want) {
		t.Errorf("runs by delivery = %v, want %v", count, want)
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("runs of %s = %d, want %d", k, count[k], n)
		}
	}
	// And a third start finds nothing to do.
	tb3 := newTestBotOn(t, db2, path, newFakeForge(), entries)
	runBot(t, tb3)
	if n := len(tb3.runs(t)); n != 4 {
		t.Errorf("runs after a third start = %d, want 4", n)
	}
}

package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cccp-project/cccp/internal/store"
)

const chromium = "/usr/bin/chromium"

// browser starts headless Chromium (Debian's package) against a real HTTP
// server of f.
func browser(t *testing.T, f *fixture) (context.Context, string) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s is not installed: %v", chromium, err)
	}
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx, srv.URL
}

// screenshot saves a full-page screenshot under $CCCP_ARTIFACTS or
// artifacts/screenshots/ at the repository root.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CCCP_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserFailedRun(t *testing.T) {
	f := seeded(t)
	ctx, base := browser(t, f)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#projects")); err != nil {
		t.Fatal(err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#projects tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 3 {
		t.Errorf("%d rows on the dashboard", rows)
	}
	screenshot(t, ctx, "dashboard")

	// The live filter hides rows without a reload.
	if err := chromedp.Do(ctx, chromedp.SendKeys("#filter", "web")); err != nil {
		t.Fatal(err)
	}
	visible, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("#projects tbody tr")].filter(r => !r.hidden).length`))
	if err != nil {
		t.Fatal(err)
	}
	if visible != 1 {
		t.Errorf("%d rows visible after filtering", visible)
	}

	// Follow the failed build to its run page: it opens at the first line
	// that explains the failure, and that line is on screen.
	if err := chromedp.Do(ctx,
		chromedp.Click(`a.badge.failed`),
		chromedp.WaitVisible("#failure"),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`location.hash === "#build-L23"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatal(err)
	}
	hash, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash`))
	if err != nil {
		t.Fatal(err)
	}
	inView, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const r = document.getElementById("build-L23").getBoundingClientRect();
			return r.top >= 0 && r.bottom <= window.innerHeight && document.querySelector(":target").id === "build-L23"; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if hash != "#build-L23" || !inView {
		t.Errorf("hash %q, highlighted line in view and targeted: %v", hash, inView)
	}
	screenshot(t, ctx, "failed-run")
}

func TestBrowserLiveLog(t *testing.T) {
	f := newFixture(t)
	r := f.addRun("acme/web", "branch", store.Cause{Kind: "manual", Actor: "admin"}, map[string]store.State{"build": store.Running}, "")
	w, err := f.logs.Create(r.ID, "build")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fmt.Fprintln(w, "STEP 1/2: FROM centos")
	ctx, base := browser(t, f)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/runs/"+r.ID),
		chromedp.WaitVisible("#build-L1"),
	); err != nil {
		t.Fatal(err)
	}
	// The stage writes more while the page is open; the lines appear.
	for i := 2; i <= 4; i++ {
		fmt.Fprintf(w, "step %d <b>not bold</b>\n", i)
		if err := chromedp.Do(ctx, chromedp.WaitVisible(fmt.Sprintf("#build-L%d", i))); err != nil {
			t.Fatalf("line %d never appeared: %v", i, err)
		}
	}
	text, err := chromedp.Run(ctx, chromedp.Text("#build-L4"))
	if err != nil {
		t.Fatal(err)
	}
	bold, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#log-build b").length`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "step 4 <b>not bold</b>") || bold != 0 {
		t.Errorf("line 4 %q, <b> elements %d", text, bold)
	}
	screenshot(t, ctx, "live-log")
}

func TestBrowserOnboard(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.InsecureCookie = false })
	ctx, base := browser(t, f)
	fill := func(sel, v string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
			return chromedp.Void{}, chromedp.Do(ctx, chromedp.Clear(sel), chromedp.SendKeys(sel, v))
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/signin?next=/onboard"),
		chromedp.SendKeys("#token", adminToken),
		chromedp.Submit("#token"),
		chromedp.WaitVisible("#f-app-id"),
		fill("#f-app-id", "acme"),
		fill("#f-job-id", "db"),
		fill("#f-git-url", "-uhttps://example.org/x"),
		fill("#f-notify-email", "dba@acme.example.org"),
		chromedp.Submit("#f-app-id"),
		chromedp.WaitVisible("#err-git-url"),
	); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "onboard-error")
	msg, err := chromedp.Run(ctx, chromedp.Text("#err-git-url"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "git-url") {
		t.Errorf("error beside git-url: %q", msg)
	}
	if err := chromedp.Do(ctx,
		fill("#f-git-url", "https://github.com/acme/db"),
		chromedp.Submit("#f-app-id"),
		chromedp.WaitVisible("#outcome"),
	); err != nil {
		t.Fatal(err)
	}
	if msg, err = chromedp.Run(ctx, chromedp.Text("#outcome")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "run #1") || !strings.Contains(msg, "index.d/acme.yaml") {
		t.Errorf("outcome %q", msg)
	}
	screenshot(t, ctx, "onboard-done")
	if text, _ := os.ReadFile(filepath.Join(f.root, "index.d", "acme.yaml")); !strings.Contains(string(text), "job-id: db") {
		t.Errorf("index not written:\n%s", text)
	}
}

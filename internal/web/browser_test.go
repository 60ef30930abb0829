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
	"github.com/cccp-project/cccp/internal/types"
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
	t.Cleanup(func() { cancelC(); cancelA() })
	// Start the browser on a context without a deadline (a deadline on the
	// first call would stop the whole browser when it ends); the steps are
	// bounded one by one (see step).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx, srv.URL
}

// stepTimeout bounds one browser step, so that a missing element fails the
// test, naming the step, instead of waiting out the whole test. It is
// generous: the machine may be loaded.
const stepTimeout = 30 * time.Second

// step runs actions with stepTimeout and fails the test naming what.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
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
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100)) // quality 100 gives a PNG
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
	step(t, ctx, "open the dashboard", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#projects"))
	if rows := eval[int](t, ctx, `document.querySelectorAll("#projects tbody tr").length`); rows != 3 {
		t.Errorf("%d rows on the dashboard", rows)
	}
	screenshot(t, ctx, "dashboard")

	// The live filter hides rows without a reload.
	step(t, ctx, "type in the filter", chromedp.SendKeys("#filter", "web"))
	if visible := eval[int](t, ctx, `[...document.querySelectorAll("#projects tbody tr")].filter(r => !r.hidden).length`); visible != 1 {
		t.Errorf("%d rows visible after filtering", visible)
	}

	// acme/web:latest's row links its failed build. The page is loaded, so
	// look once rather than wait for a link that may never come.
	failed := eval[[]string](t, ctx, `[...document.querySelectorAll("#projects a.badge.failed")].map(a => a.closest("tr").querySelector("a.project").textContent + " " + a.getAttribute("href"))`)
	if len(failed) != 1 || failed[0] != "acme/web:latest /runs/2#stage-build" {
		t.Fatalf("failed badges on the dashboard: %q, want the build of acme/web:latest", failed)
	}

	// Follow the failed build to its run page: it opens at the first line
	// that explains the failure, and that line is on screen.
	step(t, ctx, "follow the failed build", chromedp.Click(`a.badge.failed`), chromedp.WaitVisible("#failure"))
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](`location.hash === "#build-L23"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the run page did not open at build-L23 (hash %q): %v", eval[string](t, ctx, `location.hash`), err)
	}
	hash := eval[string](t, ctx, `location.hash`)
	inView := eval[bool](t, ctx, `(() => { const r = document.getElementById("build-L23").getBoundingClientRect();
			return r.top >= 0 && r.bottom <= window.innerHeight && document.querySelector(":target").id === "build-L23"; })()`)
	if hash != "#build-L23" || !inView {
		t.Errorf("hash %q, highlighted line in view and targeted: %v", hash, inView)
	}
	screenshot(t, ctx, "failed-run")
}

func TestBrowserLiveLog(t *testing.T) {
	f := newFixture(t)
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "manual", Actor: "admin"}, map[types.StageName]store.State{"build": store.Running}, "")
	w, err := f.logs.Create(r.ID, "build")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fmt.Fprintln(w, "STEP 1/2: FROM centos")
	ctx, base := browser(t, f)
	step(t, ctx, "open the running run", chromedp.Navigate(base+"/runs/"+r.ID), chromedp.WaitVisible("#build-L1"))
	// The stage writes more while the page is open; the lines appear.
	for i := 2; i <= 4; i++ {
		fmt.Fprintf(w, "step %d <b>not bold</b>\n", i)
		step(t, ctx, fmt.Sprintf("line %d appears", i), chromedp.WaitVisible(fmt.Sprintf("#build-L%d", i)))
	}
	text := eval[string](t, ctx, `document.getElementById("build-L4").textContent`)
	bold := eval[int](t, ctx, `document.querySelectorAll("#log-build b").length`)
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
	step(t, ctx, "sign in", chromedp.Navigate(base+"/signin?next=/onboard"), chromedp.SendKeys("#token", adminToken),
		chromedp.Submit("#token"), chromedp.WaitVisible("#f-app-id"))
	step(t, ctx, "submit an invalid git-url",
		fill("#f-app-id", "acme"),
		fill("#f-job-id", "db"),
		fill("#f-git-url", "-uhttps://example.org/x"),
		fill("#f-notify-email", "dba@acme.example.org"),
		chromedp.Submit("#f-app-id"),
		chromedp.WaitVisible("#err-git-url"),
	)
	screenshot(t, ctx, "onboard-error")
	if msg := eval[string](t, ctx, `document.getElementById("err-git-url").textContent`); !strings.Contains(msg, "git-url") {
		t.Errorf("error beside git-url: %q", msg)
	}
	step(t, ctx, "submit a valid entry", fill("#f-git-url", "https://github.com/acme/db"), chromedp.Submit("#f-app-id"),
		chromedp.WaitVisible("#outcome"))
	msg := eval[string](t, ctx, `document.getElementById("outcome").textContent`)
	if !strings.Contains(msg, "acme/db:latest was added") || !strings.Contains(msg, "run #1") || !strings.Contains(msg, "index.d/acme.yaml") {
		t.Errorf("outcome %q", msg)
	}
	screenshot(t, ctx, "onboard-done")
	if text, _ := os.ReadFile(filepath.Join(f.root, "index.d", "acme.yaml")); !strings.Contains(string(text), "job-id: db") {
		t.Errorf("index not written:\n%s", text)
	}
}

package rescan

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/backend/local"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/checks"
	"github.com/cccp-project/cccp/internal/gitsrc"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/registry"
	"github.com/cccp-project/cccp/internal/runlog"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/testgit"
	"github.com/cccp-project/cccp/internal/testimage"
	"github.com/cccp-project/cccp/internal/types"
)

// apkStandIn is the image's package manager as the package-updates scan
// sees it: `apk version -l '<'` lists installed packages the repository
// has newer versions of, and, as apk does, it learns them from the
// repository named in /etc/apk/repositories, over the network. So what a
// scan of one unchanged digest finds changes when the repository publishes
// an update, which is what rescans are for.
const apkStandIn = `#!/bin/sh
[ "$1" = version ] || { echo "apk stand-in: only 'version' is known" >&2; exit 2; }
echo 'Installed:                                Available:'
exec wget -q -O - "$(cat /etc/apk/repositories)/upgradable"
`

// repository is the package repository the image's apk asks.
type repository struct {
	mu        sync.Mutex
	published string // what `apk version -l '<'` lists
}

func (r *repository) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path != "/alpine/upgradable" {
		http.NotFound(w, req)
		return
	}
	fmt.Fprint(w, r.published)
}

func (r *repository) publish(s string) { r.mu.Lock(); r.published = s; r.mu.Unlock() }

// TestRescanLocalNotifiesOnceOfANewPackageUpdate runs the real pipeline:
// git, buildah, podman, the embedded registry. An image is built and
// delivered; then its package repository publishes an update. The first
// rescan finds it and tells the entry's notify-email once; the next,
// unchanged, rescan tells nobody. Neither rebuilds nor moves a tag.
func TestRescanLocalNotifiesOnceOfANewPackageUpdate(t *testing.T) {
	testimage.Require(t)
	testgit.Require(t)
	ctx := context.Background()
	dir := t.TempDir()

	repo := &repository{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: repo}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	user, pass := reg.PushCredentials()
	target, err := registry.ParseTarget(reg.Host())
	if err != nil {
		t.Fatal(err)
	}
	client := registry.NewClient(registry.ClientConfig{Credentials: map[string]registry.Credentials{reg.Host(): {User: user, Password: pass}}})
	db, err := store.Open(filepath.Join(dir, "cccp.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	src := t.TempDir()
	testgit.Write(t, src, map[string]string{
		"Dockerfile": `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY apk /bin/apk
COPY repositories /etc/apk/repositories
CMD ["sleep", "3600"]
`,
		"apk":          apkStandIn,
		"repositories": "http://" + ln.Addr().String() + "/alpine\n",
	})
	exec.Command("chmod", "755", filepath.Join(src, "apk")).Run()
	testimage.CopyBusybox(t, src)
	testgit.Init(t, src, "master")
	testgit.Commit(t, src, "app")
	e := &index.Entry{AppID: "acme", JobID: "rescan", GitURL: "file://" + src, GitBranch: "master", GitPath: "/",
		TargetFile: "Dockerfile", DesiredTag: "latest", BuildContext: "./", NotifyEmail: []string{"team@example.org"}}

	// No sandbox: the scans run with cccp's own podman on the host's
	// network, where the test's repository listens on loopback.
	prefix := fmt.Sprintf("cccp-rescan-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		out, _ := exec.Command("podman", "ps", "-a", "--filter", "name="+prefix, "--format", "{{.Names}}").Output()
		if left := strings.TrimSpace(string(out)); left != "" {
			t.Errorf("containers left behind: %s", left)
			exec.Command("podman", "rm", "-f", left).Run()
		}
	})
	pod := &podman.Runner{}
	root, runRoot := testimage.Storage(t) // what the build pulls and caches goes with the test
	be, err := local.New(local.Config{Dir: filepath.Join(dir, "work"), Buildah: &buildah.Builder{Root: root, RunRoot: runRoot}, Podman: pod,
		Suite:    &checks.Suite{Containers: pod, Network: "host", NamePrefix: prefix},
		Username: user, Password: pass, Insecure: func(string) bool { return true }, InsecureRegistries: []string{reg.Host()},
		Hold: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := pipeline.New(pipeline.Config{Resolver: gitsrc.Resolver{}, Builder: be, Tester: be, Images: client,
		Target: target, Store: db, Logs: runlog.StageLogs{Logs: runlog.New(filepath.Join(dir, "logs"), 1<<20)},
		Entries: func(k string) (*index.Entry, bool) { return e, k == e.Key() }, OwnRegistries: []string{reg.Host()}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	if err := runner.Start(rctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-runner.Stopped(); be.Close() })
	notes := &recorder{}
	scanner, err := New(Config{Runner: runner, Store: db, Entries: func() []*index.Entry { return []*index.Entry{e} }, Notifier: notes})
	if err != nil {
		t.Fatal(err)
	}

	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	run, err := runner.Enqueue(wctx, pipeline.Request{Project: e.Key(), Cause: store.Cause{Kind: types.CauseManual}})
	if err != nil {
		t.Fatal(err)
	}
	if run, err = runner.Wait(wctx, run.ID); err != nil || run.State != store.Passed {
		t.Fatalf("delivering run: %v %+v", err, run)
	}
	delivered, err := client.Digest(ctx, target.Ref("acme/rescan", "latest"))
	if err != nil {
		t.Fatal(err)
	}

	repo.publish("musl-1.2.4-r2                           < 1.2.4-r3\n")
	r1, err := scanner.Rescan(wctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"team@example.org: cccp rescan of acme/rescan:latest: 1 new finding"}
	if got := notes.list(); !slices.Equal(got, want) {
		t.Errorf("after the repository published an update: sent %q, want %q (rescan %+v)", got, want, r1.Entries)
	}
	r2, err := scanner.Rescan(wctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := notes.list(); !slices.Equal(got, want) {
		t.Errorf("after an unchanged rescan: sent %q, want only %q", got, want)
	}

	for _, r := range []*store.Rescan{r1, r2} {
		if len(r.Entries) != 1 || r.Entries[0].RunID == "" || r.Entries[0].State != store.Passed {
			t.Fatalf("rescan %s: %+v", r.ID, r.Entries)
		}
		rr, err := db.Run(ctx, r.Entries[0].RunID)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Kind != types.KindRescan || len(rr.Stages) != 1 || rr.Stages[0].Name != types.StageTest || rr.Stages[0].Digest != delivered {
			t.Errorf("rescan run %s: kind %s, stages %+v; want only a test of %s", rr.ID, rr.Kind, rr.Stages, delivered)
		}
	}
	// Nothing was rebuilt or re-tagged: the registry says so, not cccp.
	if d, err := client.Digest(ctx, target.Ref("acme/rescan", "latest")); err != nil || d != delivered {
		t.Errorf(":latest is %s (%v), was %s before the rescans", d, err, delivered)
	}
	scans, err := db.Scans(ctx, e.Key(), 0)
	if err != nil || len(scans) != 2 {
		t.Fatalf("scans: %v %+v", err, scans)
	}
	if f := scans[1].New; len(f) != 1 || f[0].Check != types.CheckPackageUpdates || !strings.Contains(f[0].Text, "musl-1.2.4-r2 < 1.2.4-r3") {
		t.Errorf("first rescan's new findings: %+v", f)
	}
	if len(scans[0].New)+len(scans[0].Resolved) != 0 || len(scans[0].Findings) != 1 {
		t.Errorf("second rescan: %+v, want the same finding and no change", scans[0])
	}
}

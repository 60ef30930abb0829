package local_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/sandbox"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// hostileScript tries what a repository's script must not be able to do
// from a build host: read cccp's secrets, files and environment, list its
// data, write outside its checkout and reach cccp's web port.
func hostileScript(data, marker, port string) string {
	return `#!/bin/sh
D=` + data + `
for f in $D/registry/cred""entials $D/cccp"".db $D/github-app"".pem $D/config"".yaml /proc/1/environ /proc/$PPID/environ; do
  echo "== read"; cat "$f" 2>/dev/null | tr '\0' '\n'; echo
done
echo "== ls"; ls -la $D $D/registry 2>/dev/null
echo "== write"; echo x > /tmp/` + marker + ` 2>/dev/null; echo x > $D/` + marker + ` 2>/dev/null
echo "== net"; busybox wget -q -O- -T 2 http://127.0.0.1:` + port + `/ 2>/dev/null && echo FETCHED
busybox nc -w 2 127.0.0.1 ` + port + ` </dev/null 2>/dev/null && echo CONNECTED
echo "== id"; id
`
}

// TestHostileRepository runs repositories whose prebuild and test scripts
// attack the build host through the real local backend and the real
// sandbox: every attempt fails; a fork bomb meets the process limit and a
// script that sleeps forever meets the stage deadline, each named; a
// script printing a gigabyte costs cccp a bounded heap; nothing is left
// running afterwards.
func TestHostileRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("runs whole pipelines with buildah and podman; not in -short")
	}
	data := t.TempDir()
	os.Chmod(data, 0o700)
	secret := fmt.Sprintf("s3cret-%d", time.Now().UnixNano())
	for _, f := range []string{"github-app.pem", "config.yaml"} {
		if err := os.WriteFile(filepath.Join(data, f), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var hits atomic.Int32
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer web.Close()
	port := web.URL[strings.LastIndexByte(web.URL, ':')+1:]
	marker := fmt.Sprintf("cccp-escaped-%d", time.Now().UnixNano())
	const sleepArg = "4242421"
	scope := fmt.Sprintf("h%05d", time.Now().UnixNano()%100000)

	attack := hostileScript(data, marker, port)
	hostile := newEntry("evil", "reader", gitRepo(t, map[string]string{
		"Dockerfile":  baseDockerfile,
		"cccp.yaml":   "job-id: reader\ntest-script: test.sh\n",
		"prebuild.sh": attack,
		"test.sh": attack + `echo "== fork"
b() { b | b & }; b
sleep 5
exit 1
`,
	}, true))
	hostile.PrebuildScript, hostile.PrebuildContext = "prebuild.sh", "./"
	sleeper := newEntry("evil", "sleeper", gitRepo(t, map[string]string{
		"Dockerfile": baseDockerfile,
		"cccp.yaml":  "job-id: sleeper\ntest-script: test.sh\n",
		"test.sh":    "#!/bin/sh\n(sleep " + sleepArg + " &)\nsetsid sleep " + sleepArg + " &\nnohup sleep " + sleepArg + " >/dev/null 2>&1 &\nexec sleep " + sleepArg + "\n",
	}, true))
	loud := newEntry("evil", "loud", gitRepo(t, map[string]string{
		"Dockerfile": baseDockerfile,
		"cccp.yaml":  "job-id: loud\ntest-script: test.sh\n",
		"test.sh":    "#!/bin/sh\nhead -c 1000000000 /dev/zero | tr '\\0' y\nexit 1\n",
	}, true))

	w := newWorldWith(t, worldOptions{dir: data, limits: sandbox.Limits{Pids: 256}, stageTimeout: 90 * time.Second, scope: scope},
		hostile, sleeper, loud)
	user, pass := w.reg.PushCredentials()
	if _, err := os.Stat(filepath.Join(data, "registry", "credentials")); err != nil {
		t.Fatalf("the registry's credentials file is not where the script looks: %v", err)
	}

	logOf := func(run *store.Run, stage types.StageName) string {
		f, err := w.logs.Open(run.ID, string(stage))
		if err != nil {
			return ""
		}
		defer f.Close()
		b, _ := io.ReadAll(io.LimitReader(f, 32<<20))
		return string(b)
	}
	userScript := func(run *store.Run) store.Check {
		if len(run.Stages) > 1 {
			for _, c := range run.Stages[1].Checks {
				if c.Name == types.CheckUserScript {
					return c
				}
			}
		}
		return store.Check{}
	}

	t.Run("every attempt fails", func(t *testing.T) {
		run := w.run(t, "evil/reader:latest")
		build, test := logOf(run, types.StageBuild), logOf(run, types.StageTest)
		for stage, log := range map[string]string{"prebuild": build, "test": test} {
			if !strings.Contains(log, "== id") {
				t.Errorf("%s script did not run:\n%s", stage, log)
				continue
			}
			for _, leak := range []string{secret, pass, user + ":" + pass, "cccp.db", "github-app.pem", "config.yaml",
				"credentials", "HOME=/root", "FETCHED", "CONNECTED", "uid=0"} {
				if strings.Contains(log, leak) {
					t.Errorf("%s log shows %q", stage, leak)
				}
			}
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("cccp's web port got %d requests", n)
		}
		for _, p := range []string{filepath.Join("/tmp", marker), filepath.Join(data, marker)} {
			if _, err := os.Stat(p); err == nil {
				os.Remove(p)
				t.Errorf("a script wrote %s", p)
			}
		}
		c := userScript(run)
		if run.State != store.Failed || !strings.Contains(c.Summary, "process limit (256) reached") {
			t.Errorf("run %s, user-script %s: %q; want failed at the process limit\n%s", run.State, c.State, c.Summary, test)
		}
	})

	t.Run("sleep forever meets the deadline", func(t *testing.T) {
		start := time.Now()
		run := w.run(t, "evil/sleeper:latest")
		t.Logf("sleeper: %s after %s: %s", run.State, time.Since(start).Round(time.Second), run.Error)
		stage := run.Stages[1]
		if run.State != store.Failed || !strings.Contains(stage.Error+run.Error, "deadline") && !strings.Contains(stage.Error+run.Error, "timed out") {
			t.Errorf("run %s, test stage %s %q, run error %q; want failed at the deadline", run.State, stage.State, stage.Error, run.Error)
		}
	})

	t.Run("1 GB of output", func(t *testing.T) {
		var run *store.Run
		grown := heapPeak(func() { run = w.run(t, "evil/loud:latest") })
		log := logOf(run, types.StageTest)
		t.Logf("1 GB from a test script: heap peak +%d MiB, test log %d bytes, user-script %q", grown>>20, len(log), userScript(run).Summary)
		if grown > 64<<20 {
			t.Errorf("heap grew by %d bytes", grown)
		}
		if len(log) > 12<<20 {
			t.Errorf("test log holds %d bytes", len(log))
		}
	})

	// Nothing is left: no process of the scripts, no box, no run image.
	if out, _ := exec.Command("pgrep", "-af", "sleep "+sleepArg).Output(); len(out) > 0 {
		t.Errorf("processes left: %s", out)
	}
	boxes, _ := filepath.Glob(filepath.Join("/var/lib", sandbox.DefaultUser, "b", scope+"-*"))
	groups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/pids/cccp-sandbox", scope+"-*"))
	if len(boxes)+len(groups) > 0 {
		t.Errorf("boxes left: %v %v", boxes, groups)
	}
	if out, err := exec.Command("buildah", "--root", w.root, "--runroot", w.runRoot, "images", "--format", "{{.Name}}:{{.Tag}}").CombinedOutput(); err != nil {
		t.Errorf("list the build storage's images: %v: %s", err, out)
	} else if strings.Contains(string(out), "/evil/") {
		t.Errorf("run images left:\n%s", out)
	}
}

// heapPeak samples the heap while f runs and returns the largest
// HeapAlloc above the starting one.
func heapPeak(f func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak - base
}

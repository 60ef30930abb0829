package buildah

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/idpool"
	"github.com/cccp-project/cccp/internal/testimage"
)

// buildRange takes a range of the build user's subordinate ids (created
// by hack/install-deps.sh), so that this test never shares host ids with
// a build of another test running at the same time.
func buildRange(t testing.TB) *idpool.Range {
	t.Helper()
	ranges, err := idpool.NewRanges(idpool.RangesConfig{User: "cccp-build"})
	if err != nil {
		t.Fatalf("build id ranges (run hack/install-deps.sh as root): %v", err)
	}
	r, err := ranges.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Release() })
	return r
}

// TestBuildInUserNamespace: a mapped build's RUN step runs, as seen from
// the host, under the range's first uid and gid, not as root; inside it is
// root with a uid_map of the range; and the image's layer still records
// what it wrote as owned by 0 (and a chown'd file by its container uid).
func TestBuildInUserNamespace(t *testing.T) {
	base := testimage.Busybox(t)
	ids := buildRange(t)
	marker := fmt.Sprintf("cccp-userns-%d", time.Now().UnixNano())
	dir := newContext(t, "FROM "+base+"\n"+
		"COPY copied /copied\n"+
		"RUN cat /proc/self/uid_map > /uid_map && id -u > /id && touch /x && touch /owned && chown 1000:1001 /owned && "+
		"sleep 2 && echo "+marker+"\n",
		map[string]string{"copied": "from the context\n"})
	b := &Builder{}
	ownStorage(t, b)
	image := imageName(t)
	cleanupImage(t, b, image)

	// Watch the host's /proc for the RUN step while the build runs.
	ctx, stop := context.WithCancel(context.Background())
	var mu sync.Mutex
	seen := map[string]bool{} // "uid gid" of the RUN step's processes
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, id := range procsWith(marker) {
				mu.Lock()
				seen[id] = true
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var log bytes.Buffer
	_, err := b.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &log, NoLayers: true,
		IDMap: &IDMap{UID: ids.UID, GID: ids.GID, Size: ids.Size}})
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	want := fmt.Sprintf("%d %d", ids.UID, ids.GID)
	if len(seen) == 0 {
		t.Fatalf("never saw the RUN step in the host's /proc\n%s", log.String())
	}
	for id := range seen {
		if id != want {
			t.Errorf("RUN step runs on the host as uid/gid %s, want %s (the build's range)", id, want)
		}
	}

	files := layerFiles(t, b, image)
	if got := strings.Fields(string(files["uid_map"].content)); len(got) != 3 || got[0] != "0" || got[1] != strconv.Itoa(int(ids.UID)) {
		t.Errorf("uid_map inside the RUN step = %q, want 0 %d %d", files["uid_map"].content, ids.UID, ids.Size)
	}
	if got := strings.TrimSpace(string(files["id"].content)); got != "0" {
		t.Errorf("id -u inside = %q, want 0", got)
	}
	for name, owner := range map[string]string{"x": "0:0", "owned": "1000:1001", "copied": "0:0", "uid_map": "0:0"} {
		f, ok := files[name]
		if !ok {
			t.Errorf("no %s in the image's layers", name)
			continue
		}
		if got := fmt.Sprintf("%d:%d", f.uid, f.gid); got != owner {
			t.Errorf("%s is owned by %s in the layer, want %s", name, got, owner)
		}
	}
}

// procsWith returns "uid gid" of the host's processes whose command line
// has s.
func procsWith(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) || bytes.Contains(cmdline, []byte("buildah")) {
			continue
		}
		f, err := os.Open(filepath.Join(d, "status"))
		if err != nil {
			continue
		}
		var uid, gid string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			if fields := strings.Fields(v); len(fields) > 0 {
				switch k {
				case "Uid":
					uid = fields[0] // real uid
				case "Gid":
					gid = fields[0]
				}
			}
		}
		f.Close()
		if uid != "" {
			out = append(out, uid+" "+gid)
		}
	}
	return out
}

type layerFile struct {
	uid, gid int
	content  []byte
}

// layerFiles reads the image's layers as pushed (the bytes a registry
// gets): the last entry of each top-level file, its owner and content.
func layerFiles(t *testing.T, b *Builder, image string) map[string]layerFile {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command(b.binary(), append(b.globalArgs(), "push", image, "dir:"+dir)...).CombinedOutput()
	if err != nil {
		t.Fatalf("push to a folder: %v: %s", err, out)
	}
	var m struct {
		Layers []struct{ Digest string }
	}
	dt, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || json.Unmarshal(dt, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	files := map[string]layerFile{}
	for _, l := range m.Layers {
		_, hex, _ := strings.Cut(l.Digest, ":")
		f, err := os.Open(filepath.Join(dir, hex))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bufio.NewReader(f)
		if zr, err := gzip.NewReader(r); err == nil {
			r = zr
		} else {
			f.Seek(0, 0)
			r = f
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
			if strings.Contains(name, "/") {
				continue
			}
			content, _ := io.ReadAll(io.LimitReader(tr, 4096))
			files[name] = layerFile{uid: h.Uid, gid: h.Gid, content: content}
		}
		f.Close()
	}
	return files
}

// BenchmarkBuildUserNS: what the user namespace costs a small build (one
// RUN step, no layer cache) on a small and on a Debian base: as the host's
// root, mapped to a range that already has its copy of the base (every
// build after the first of a base in a range), and mapped to one that has
// none yet (the first: containers/storage copies the base, chowned).
func BenchmarkBuildUserNS(b *testing.B) {
	ids := buildRange(b)
	bases := []struct {
		name string
		ref  func(testing.TB) string
	}{{"busybox", testimage.Busybox}, {"debian", testimage.Debian}}
	for _, base := range bases {
		ref := base.ref(b)
		for _, mode := range []string{"host-root", "mapped", "mapped-first"} {
			b.Run(base.name+"/"+mode, func(b *testing.B) {
				bl := &Builder{}
				var idmap *IDMap
				if mode != "host-root" {
					idmap = &IDMap{UID: ids.UID, GID: ids.GID, Size: ids.Size}
				}
				build := func(from string) {
					dir := newContext(b, fmt.Sprintf("FROM %s\nRUN echo %d > /n\n", from, time.Now().UnixNano()), map[string]string{})
					image := imageName(b)
					var log bytes.Buffer
					if _, err := bl.Build(context.Background(), BuildRequest{ContextDir: dir, Image: image, Log: &log, NoLayers: true, IDMap: idmap}); err != nil {
						b.Fatalf("build: %v\n%s", err, log.String())
					}
					b.StopTimer()
					bl.Remove(context.Background(), image)
					b.StartTimer()
				}
				b.StopTimer()
				build(ref) // the range's copy of the base, made once
				b.StartTimer()
				for b.Loop() {
					from := ref
					if mode == "mapped-first" {
						b.StopTimer()
						from = relabel(b, ref) // a new image of the same layers: no copy in any range yet
						b.StartTimer()
					}
					build(from)
					if from != ref {
						b.StopTimer()
						bl.Remove(context.Background(), from)
						b.StartTimer()
					}
				}
			})
		}
	}
}

// relabel commits ref again with a label of its own: a new image (its own
// ID, its own mapped copies) over the same layers.
func relabel(tb testing.TB, ref string) string {
	tb.Helper()
	name := fmt.Sprintf("localhost/cccp-test/relabel-%d:t", time.Now().UnixNano())
	out, err := exec.Command("buildah", "from", "--pull=never", "-q", ref).Output()
	if err != nil {
		tb.Fatalf("buildah from %s: %v", ref, err)
	}
	ctr := strings.TrimSpace(string(out))
	if out, err := exec.Command("buildah", "config", "--label", "cccp-relabel="+name, ctr).CombinedOutput(); err != nil {
		tb.Fatalf("buildah config: %v: %s", err, out)
	}
	if out, err := exec.Command("buildah", "commit", "--rm", "-q", ctr, name).CombinedOutput(); err != nil {
		tb.Fatalf("buildah commit: %v: %s", err, out)
	}
	return name
}

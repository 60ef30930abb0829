package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// startRegistry starts an embedded registry in dir (a new temp dir when
// empty) and closes it when the test ends.
func startRegistry(t testing.TB, dir string) *Embedded {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	e, err := Start(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func pushAuth(e *Embedded) authn.Authenticator {
	u, p := e.PushCredentials()
	return &authn.Basic{Username: u, Password: p}
}

// push writes img to ref with auth and returns its digest.
func push(t testing.TB, ref string, img v1.Image, auth authn.Authenticator) string {
	t.Helper()
	if err := tryPush(t.Context(), ref, img, auth); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func tryPush(ctx context.Context, ref string, img v1.Image, auth authn.Authenticator) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	p, err := remote.NewPusher(remote.WithAuth(auth))
	if err != nil {
		return err
	}
	return p.Push(ctx, r, img)
}

func randomImage(t testing.TB, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pullAll pulls ref anonymously and reads and verifies every blob.
func pullAll(t testing.TB, ref string) error {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		return err
	}
	return validate.Image(img)
}

func statusOf(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

func TestAccess(t *testing.T) {
	e := startRegistry(t, "")
	user, pass := e.PushCredentials()
	img := randomImage(t, 1024, 2)
	ref := e.Host() + "/ns/app:v1"
	push(t, ref, img, pushAuth(e))

	t.Run("anonymous pull", func(t *testing.T) {
		if err := pullAll(t, ref); err != nil {
			t.Fatalf("anonymous pull: %v", err)
		}
	})
	pushTests := []struct {
		name string
		auth authn.Authenticator
		want int
	}{
		{"anonymous push refused", authn.Anonymous, http.StatusUnauthorized},
		{"wrong password refused", &authn.Basic{Username: user, Password: pass + "x"}, http.StatusUnauthorized},
		{"wrong user refused", &authn.Basic{Username: user + "x", Password: pass}, http.StatusUnauthorized},
		{"push credentials accepted", pushAuth(e), 0},
	}
	for _, tt := range pushTests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryPush(t.Context(), e.Host()+"/ns/other:v1", randomImage(t, 512, 1), tt.auth)
			if got := statusOf(err); got != tt.want || (tt.want == 0 && err != nil) {
				t.Fatalf("push: status %d, err %v; want status %d", got, err, tt.want)
			}
		})
	}

	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	httpTests := []struct {
		name      string
		method    string
		path      string
		auth      bool
		want      int
		challenge bool
	}{
		{"version check without credentials challenges", http.MethodGet, "/v2/", false, http.StatusUnauthorized, true},
		{"version check with credentials", http.MethodGet, "/v2/", true, http.StatusOK, false},
		{"anonymous manifest GET", http.MethodGet, "/v2/ns/app/manifests/v1", false, http.StatusOK, false},
		{"anonymous manifest HEAD", http.MethodHead, "/v2/ns/app/manifests/v1", false, http.StatusOK, false},
		{"anonymous tag list", http.MethodGet, "/v2/ns/app/tags/list", false, http.StatusOK, false},
		{"anonymous DELETE refused", http.MethodDelete, "/v2/ns/app/manifests/" + digest.String(), false, http.StatusUnauthorized, true},
		{"anonymous upload refused", http.MethodPost, "/v2/ns/app/blobs/uploads/", false, http.StatusUnauthorized, true},
		{"upload with credentials starts", http.MethodPost, "/v2/ns/app/blobs/uploads/", true, http.StatusAccepted, false},
	}
	for _, tt := range httpTests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+e.Host()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
			if tt.auth {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			got := resp.Header.Get("WWW-Authenticate")
			if wantHdr := `Basic realm="cccp"`; tt.challenge && got != wantHdr {
				t.Errorf("WWW-Authenticate %q, want %q", got, wantHdr)
			}
		})
	}
	// The anonymous DELETE above must not have removed anything.
	if err := pullAll(t, ref); err != nil {
		t.Fatalf("pull after refused delete: %v", err)
	}
}

func TestCredentialsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	e1, err := Start(t.Context(), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u1, p1 := e1.PushCredentials()
	if u1 != "cccp" || len(p1) < 32 {
		t.Fatalf("credentials user %q, password of %d chars; want user cccp and a long password", u1, len(p1))
	}
	digest := push(t, e1.Host()+"/ns/keep:v1", randomImage(t, 2048, 2), pushAuth(e1))
	if err := e1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(filepath.Join(dir, "credentials"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("credentials file mode %v, want 0600", perm)
	}

	e2 := startRegistry(t, dir)
	u2, p2 := e2.PushCredentials()
	if u2 != u1 || p2 != p1 {
		t.Errorf("credentials changed across a restart")
	}
	c := NewClient(ClientConfig{AuthFiles: []string{}})
	got, err := c.Digest(t.Context(), e2.Host()+"/ns/keep:v1")
	if err != nil || got != digest {
		t.Fatalf("after restart Digest = %q, %v; want %s", got, err, digest)
	}
	if err := pullAll(t, e2.Host()+"/ns/keep:v1"); err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
	push(t, e2.Host()+"/ns/keep:v2", randomImage(t, 512, 1), &authn.Basic{Username: u1, Password: p1})
}

func TestCredentialsFileNarrowed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	if err := os.WriteFile(path, []byte(`{"user":"cccp","password":"0123456789abcdef0123456789abcdef"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startRegistry(t, dir)
	if _, p := e.PushCredentials(); p != "0123456789abcdef0123456789abcdef" {
		t.Errorf("existing credentials not used")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v after start, want 0600", perm)
	}
}

func TestCredentialsNeverLogged(t *testing.T) {
	var buf lockedBuffer
	dir := t.TempDir()
	log := slogTo(&buf)
	e, err := Start(t.Context(), Config{Dir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	_, pass := e.PushCredentials()
	push(t, e.Host()+"/ns/log:v1", randomImage(t, 512, 1), pushAuth(e))
	_ = tryPush(t.Context(), e.Host()+"/ns/log:v2", randomImage(t, 512, 1), authn.Anonymous)
	if _, err := e.GC(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "registry started") {
		t.Fatalf("logger received nothing; got %q", out)
	}
	if strings.Contains(out, pass) {
		t.Fatalf("push password appears in the log")
	}
	if !strings.Contains(out, "component=distribution") {
		t.Errorf("distribution's own log lines did not reach slog")
	}
}

// ageStorage moves every file's modification time, and every request's
// memory of a digest, an hour back, so GC's protection of recent writes
// does not apply to them.
func ageStorage(t *testing.T, e *Embedded) {
	t.Helper()
	ageTouches(e)
	ageFiles(t, e)
}

// ageFiles moves every stored file's modification time an hour back.
func ageFiles(t *testing.T, e *Embedded) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(e.storageDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ageTouches moves the registry's memory of the digests requests named an
// hour back.
func ageTouches(e *Embedded) {
	e.touchMu.Lock()
	defer e.touchMu.Unlock()
	for d := range e.touched {
		e.touched[d] = time.Now().Add(-time.Hour)
	}
}

func blobStatus(t *testing.T, host, repo, digest string) int {
	t.Helper()
	return status(t, http.MethodHead, fmt.Sprintf("http://%s/v2/%s/blobs/%s", host, repo, digest), "", "")
}

// status sends method to url, asking for any manifest type, with basic
// auth user:pass when user is set (anonymously otherwise), and returns
// the status.
func status(t *testing.T, method, url, user, pass string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.String())
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return append(out, cfg.String())
}

func TestGC(t *testing.T) {
	e := startRegistry(t, "")
	auth := pushAuth(e)
	c := NewClient(ClientConfig{AuthFiles: []string{}, Credentials: map[string]Credentials{e.Host(): {User: "cccp", Password: mustPass(e)}}})
	h := e.Host()

	// Tagged images: one plain, one retagged (two tags), and a
	// multi-platform index whose children are only referenced by it.
	kept := randomImage(t, 4096, 3)
	push(t, h+"/app/a:test", kept, auth)
	if err := c.Tag(t.Context(), h+"/app/a:test", h+"/app/a:rc"); err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	idxRef, err := name.ParseReference(h + "/app/multi:v1")
	if err != nil {
		t.Fatal(err)
	}
	pusher, err := remote.NewPusher(remote.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	if err := pusher.Push(t.Context(), idxRef, idx); err != nil {
		t.Fatal(err)
	}
	// An image whose tag is moved to another image: untagged afterwards.
	gone := randomImage(t, 4096, 2)
	goneDigest := push(t, h+"/app/b:test", gone, auth)
	push(t, h+"/app/b:test", randomImage(t, 4096, 2), auth)

	ageStorage(t, e)

	// Written after the aging: an unreferenced blob of a push that has not
	// sent its manifest yet.
	pending := randomImage(t, 1024, 1)
	pendingLayers, err := pending.Layers()
	if err != nil {
		t.Fatal(err)
	}
	repoB, err := name.NewRepository(h + "/app/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := pusher.Upload(t.Context(), repoB, pendingLayers[0]); err != nil {
		t.Fatal(err)
	}
	pendingDigest, err := pendingLayers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}

	dry, err := e.GC(t.Context(), true)
	if err != nil {
		t.Fatalf("GC dry run: %v", err)
	}
	if !dry.DryRun || dry.ManifestsDeleted != 1 || dry.BlobsDeleted != 4 || dry.LayerLinksDeleted != 3 || dry.BytesFreed <= 0 {
		t.Errorf("dry run stats %+v; want 1 manifest, 4 blobs (2 layers, config, manifest), 3 layer links, with bytes", dry)
	}
	if ok, err := c.Exists(t.Context(), h+"/app/b@"+goneDigest); err != nil || !ok {
		t.Fatalf("dry run deleted the untagged manifest (exists=%v, err=%v)", ok, err)
	}
	ageTouches(e) // the check above named the manifest by digest

	stats, err := e.GC(t.Context(), false)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	if stats.ManifestsDeleted != dry.ManifestsDeleted || stats.BlobsDeleted != dry.BlobsDeleted || stats.BytesFreed != dry.BytesFreed {
		t.Errorf("GC stats %+v differ from the dry run's %+v", stats, dry)
	}
	if stats.KeptRecent != 2 {
		t.Errorf("GC stats %+v: want the pending blob and its layer link kept (2)", stats)
	}

	t.Run("every tag still pulls", func(t *testing.T) {
		for _, tag := range []string{"app/a:test", "app/a:rc", "app/b:test"} {
			if err := pullAll(t, h+"/"+tag); err != nil {
				t.Errorf("pull %s: %v", tag, err)
			}
		}
		ir, err := name.ParseReference(h + "/app/multi:v1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := remote.Index(ir, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(got); err != nil {
			t.Errorf("index after GC: %v", err)
		}
	})
	t.Run("untagged manifest and its blobs are gone", func(t *testing.T) {
		if ok, err := c.Exists(t.Context(), h+"/app/b@"+goneDigest); err != nil || ok {
			t.Errorf("untagged manifest exists=%v err=%v, want gone", ok, err)
		}
		for _, d := range layerDigests(t, gone) {
			if got := blobStatus(t, h, "app/b", d); got != http.StatusNotFound {
				t.Errorf("blob %s: status %d, want 404", d, got)
			}
		}
	})
	t.Run("recent upload kept", func(t *testing.T) {
		if got := blobStatus(t, h, "app/b", pendingDigest.String()); got != http.StatusOK {
			t.Errorf("pending blob status %d, want 200", got)
		}
	})
	t.Run("second GC finds nothing old", func(t *testing.T) {
		again, err := e.GC(t.Context(), false)
		if err != nil {
			t.Fatal(err)
		}
		if again.ManifestsDeleted+again.BlobsDeleted+again.LayerLinksDeleted != 0 {
			t.Errorf("second GC deleted more: %+v", again)
		}
	})
}

func TestGCEmptyRegistry(t *testing.T) {
	e := startRegistry(t, "")
	stats, err := e.GC(t.Context(), false)
	if err != nil {
		t.Fatalf("GC on an empty registry: %v", err)
	}
	if stats.Paused <= 0 {
		t.Errorf("stats %+v: no pause measured", stats)
	}
	if stats.Paused = 0; stats != (GCStats{}) {
		t.Errorf("stats %+v, want zero", stats)
	}
}

func TestGCPausesWrites(t *testing.T) {
	e := startRegistry(t, "")
	e.writes.Lock() // as GC holds it
	done := make(chan error, 1)
	go func() {
		done <- tryPush(context.Background(), e.Host()+"/ns/w:v1", randomImage(t, 512, 1), pushAuth(e))
	}()
	// Reads go on while writes wait.
	c := NewClient(ClientConfig{AuthFiles: []string{}})
	if _, err := c.Tags(t.Context(), e.Host()+"/ns/w"); err != nil {
		t.Fatalf("read while paused: %v", err)
	}
	select {
	case err := <-done:
		e.writes.Unlock()
		t.Fatalf("push finished while writes were paused (err %v)", err)
	default:
	}
	e.writes.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("push after the pause: %v", err)
	}
}

func mustPass(e *Embedded) string { _, p := e.PushCredentials(); return p }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

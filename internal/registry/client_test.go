package registry

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// recorder is a RoundTripper that records "METHOD path?query" of every
// request it carries.
type recorder struct {
	mu   sync.Mutex
	reqs []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	line := req.Method + " " + req.URL.Path
	if req.URL.RawQuery != "" {
		line += "?" + req.URL.RawQuery
	}
	r.reqs = append(r.reqs, line)
	r.mu.Unlock()
	return remote.DefaultTransport.RoundTrip(req)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.reqs = nil
	r.mu.Unlock()
}

// blobWrites returns the requests that start, send or finish a blob upload.
func (r *recorder) blobWrites() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.reqs {
		m, p, _ := strings.Cut(l, " ")
		if strings.Contains(p, "/blobs/") && m != http.MethodGet && m != http.MethodHead {
			out = append(out, l)
		}
	}
	return out
}

func (r *recorder) count(method, pathPart string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.reqs {
		m, p, _ := strings.Cut(l, " ")
		if m == method && strings.Contains(p, pathPart) {
			n++
		}
	}
	return n
}

// blobReads counts GETs of blob content.
func (r *recorder) blobReads() int { return r.count(http.MethodGet, "/blobs/sha256:") }

func clientFor(rec *recorder, regs ...*Embedded) *Client {
	creds := map[string]Credentials{}
	for _, e := range regs {
		u, p := e.PushCredentials()
		creds[e.Host()] = Credentials{User: u, Password: p}
	}
	return NewClient(ClientConfig{Credentials: creds, AuthFiles: []string{}, Transport: rec})
}

func TestTagIsManifestCopy(t *testing.T) {
	e := startRegistry(t, "")
	h := e.Host()
	img := randomImage(t, 1<<20, 3)
	digest := push(t, h+"/app/job:test", img, pushAuth(e))
	rec := &recorder{}
	c := clientFor(rec, e)

	tests := []struct {
		name, src, dst string
		mounts         int // blobs mounted into another repository
	}{
		{"tag to tag", h + "/app/job:test", h + "/app/job:rc", 0},
		{"digest to tag", h + "/app/job@" + digest, h + "/app/job:latest", 0},
		{"other repository mounts", h + "/app/job@" + digest, h + "/app/other:v1", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.reset()
			if err := c.Tag(t.Context(), tt.src, tt.dst); err != nil {
				t.Fatalf("Tag: %v", err)
			}
			var sent []string
			for _, w := range rec.blobWrites() {
				if !strings.Contains(w, "mount=") {
					sent = append(sent, w)
				}
			}
			if len(sent) != 0 {
				t.Errorf("blob uploads during a retag: %v", sent)
			}
			if got := rec.count(http.MethodPost, "/blobs/uploads/"); got != tt.mounts {
				t.Errorf("%d mount requests, want %d (requests: %v)", got, tt.mounts, rec.reqs)
			}
			if got := rec.blobReads(); got != 0 {
				t.Errorf("%d blob reads during a retag", got)
			}
			if got := rec.count(http.MethodPut, "/manifests/"); got != 1 {
				t.Errorf("%d manifest PUTs, want 1", got)
			}
			got, err := c.Digest(t.Context(), tt.dst)
			if err != nil || got != digest {
				t.Errorf("Digest(%s) = %q, %v; want %s", tt.dst, got, err, digest)
			}
			if err := pullAll(t, tt.dst); err != nil {
				t.Errorf("pull %s: %v", tt.dst, err)
			}
		})
	}

	tags, err := c.Tags(t.Context(), h+"/app/job")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if want := []string{"latest", "rc", "test"}; !slices.Equal(tags, want) {
		t.Errorf("Tags = %v, want %v", tags, want)
	}
}

func TestTagErrors(t *testing.T) {
	e := startRegistry(t, "")
	h := e.Host()
	digest := push(t, h+"/app/job:test", randomImage(t, 512, 1), pushAuth(e))
	c := clientFor(&recorder{}, e)
	anon := NewClient(ClientConfig{AuthFiles: []string{}})

	tests := []struct {
		name     string
		client   *Client
		src, dst string
		wantErr  string
		notFound bool
	}{
		{"missing source", c, h + "/app/job:nope", h + "/app/job:rc", "MANIFEST_UNKNOWN", true},
		{"missing repository", c, h + "/app/none:test", h + "/app/none:rc", "", true},
		{"digest target", c, h + "/app/job:test", h + "/app/job@" + digest, "target must be a tag", false},
		{"no tag in source", c, h + "/app/job", h + "/app/job:rc", "needs a :tag or @digest", false},
		{"anonymous client cannot tag", anon, h + "/app/job:test", h + "/app/job:rc", "UNAUTHORIZED", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.client.Tag(t.Context(), tt.src, tt.dst)
			if err == nil {
				t.Fatal("Tag succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v (err %v)", got, tt.notFound, err)
			}
		})
	}
	if ok, err := c.Exists(t.Context(), h+"/app/job:rc"); err != nil || ok {
		t.Errorf("after failed tags, :rc exists=%v err=%v", ok, err)
	}
}

func TestCopyAcrossRegistries(t *testing.T) {
	a := startRegistry(t, "")
	b := startRegistry(t, "")
	img := randomImage(t, 64<<10, 3)
	digest := push(t, a.Host()+"/app/job:rc", img, pushAuth(a))
	rec := &recorder{}
	c := clientFor(rec, a, b)

	if err := c.Copy(t.Context(), a.Host()+"/app/job:rc", b.Host()+"/app/job:1.0"); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	got, err := c.Digest(t.Context(), b.Host()+"/app/job:1.0")
	if err != nil || got != digest {
		t.Fatalf("copied digest %q, %v; want %s", got, err, digest)
	}
	if err := pullAll(t, b.Host()+"/app/job:1.0"); err != nil {
		t.Fatalf("pull copy: %v", err)
	}
	// 3 layers and the config travel once each.
	if got := rec.count(http.MethodPut, "/blobs/uploads/"); got != 4 {
		t.Errorf("%d blob upload PUTs, want 4", got)
	}

	t.Run("second copy sends no blob", func(t *testing.T) {
		rec.reset()
		if err := c.Copy(t.Context(), a.Host()+"/app/job@"+digest, b.Host()+"/app/job:1"); err != nil {
			t.Fatal(err)
		}
		if w := rec.blobWrites(); len(w) != 0 {
			t.Errorf("blob writes on a repeated copy: %v", w)
		}
	})
	t.Run("digest target must match", func(t *testing.T) {
		err := c.Copy(t.Context(), a.Host()+"/app/job:rc", b.Host()+"/app/job@sha256:"+strings.Repeat("0", 64))
		if err == nil || !strings.Contains(err.Error(), "source digest is") {
			t.Errorf("err %v, want a digest mismatch", err)
		}
	})
	t.Run("copy by digest", func(t *testing.T) {
		if err := c.Copy(t.Context(), a.Host()+"/app/job:rc", b.Host()+"/app/byd@"+digest); err != nil {
			t.Fatal(err)
		}
		if ok, err := c.Exists(t.Context(), b.Host()+"/app/byd@"+digest); err != nil || !ok {
			t.Errorf("exists=%v err=%v", ok, err)
		}
	})
}

func TestExistsTagsDelete(t *testing.T) {
	e := startRegistry(t, "")
	h := e.Host()
	digest := push(t, h+"/app/job:test", randomImage(t, 512, 1), pushAuth(e))
	c := clientFor(&recorder{}, e)
	if err := c.Tag(t.Context(), h+"/app/job:test", h+"/app/job:rc"); err != nil {
		t.Fatal(err)
	}

	exists := []struct {
		ref  string
		want bool
	}{
		{h + "/app/job:test", true},
		{h + "/app/job@" + digest, true},
		{h + "/app/job:nope", false},
		{h + "/app/none:test", false},
	}
	for _, tt := range exists {
		t.Run("exists "+strings.TrimPrefix(tt.ref, h+"/"), func(t *testing.T) {
			got, err := c.Exists(t.Context(), tt.ref)
			if err != nil || got != tt.want {
				t.Errorf("Exists = %v, %v; want %v", got, err, tt.want)
			}
		})
	}

	t.Run("tags of a missing repository", func(t *testing.T) {
		tags, err := c.Tags(t.Context(), h+"/app/none")
		if err != nil || len(tags) != 0 {
			t.Errorf("Tags = %v, %v; want none", tags, err)
		}
	})
	t.Run("delete a tag keeps the other", func(t *testing.T) {
		if err := c.Delete(t.Context(), h+"/app/job:test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Exists(t.Context(), h+"/app/job:test"); ok {
			t.Error(":test still exists")
		}
		if ok, _ := c.Exists(t.Context(), h+"/app/job:rc"); !ok {
			t.Error(":rc was lost with :test")
		}
	})
	t.Run("delete by digest", func(t *testing.T) {
		if err := c.Delete(t.Context(), h+"/app/job@"+digest); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Exists(t.Context(), h+"/app/job:rc"); ok {
			t.Error(":rc still exists after its manifest was deleted")
		}
	})
}

func TestAuthFiles(t *testing.T) {
	e := startRegistry(t, "")
	u, p := e.PushCredentials()
	h := e.Host()
	push(t, h+"/app/job:test", randomImage(t, 512, 1), pushAuth(e))

	write := func(t *testing.T, content string) string {
		path := filepath.Join(t.TempDir(), "auth.json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name    string
		files   func(t *testing.T) []string
		wantErr string
	}{
		{"containers auth.json by host", func(t *testing.T) []string {
			return []string{write(t, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, b64(u+":"+p)))}
		}, ""},
		{"docker config with scheme and username fields", func(t *testing.T) []string {
			return []string{write(t, fmt.Sprintf(`{"auths":{"http://%s/v1/":{"username":%q,"password":%q}}}`, h, u, p))}
		}, ""},
		{"repository key wins over host key", func(t *testing.T) []string {
			return []string{write(t, fmt.Sprintf(`{"auths":{%q:{"auth":%q},%q:{"auth":%q}}}`,
				h, b64(u+":wrong"), h+"/app", b64(u+":"+p)))}
		}, ""},
		{"first file wins", func(t *testing.T) []string {
			return []string{
				write(t, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, b64(u+":"+p))),
				write(t, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, b64(u+":wrong"))),
			}
		}, ""},
		{"missing file skipped", func(t *testing.T) []string {
			return []string{filepath.Join(t.TempDir(), "none.json"), write(t, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, b64(u+":"+p)))}
		}, ""},
		{"wrong password refused", func(t *testing.T) []string {
			return []string{write(t, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, h, b64(u+":wrong")))}
		}, "UNAUTHORIZED"},
		{"broken file named, content not shown", func(t *testing.T) []string {
			return []string{write(t, `{"auths": secret-ish`)}
		}, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(ClientConfig{AuthFiles: tt.files(t)})
			err := c.Tag(t.Context(), h+"/app/job:test", h+"/app/job:rc")
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Tag: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Tag err %v, want %q", err, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "secret-ish")) {
				t.Errorf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestDefaultAuthFiles(t *testing.T) {
	t.Setenv("REGISTRY_AUTH_FILE", "/a/auth.json")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/7")
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("DOCKER_CONFIG", "/dockercfg")
	t.Setenv("HOME", "/home/u")
	want := []string{"/a/auth.json", "/run/user/7/containers/auth.json", "/cfg/containers/auth.json", "/dockercfg/config.json", "/home/u/.docker/config.json"}
	if got := DefaultAuthFiles(); !slices.Equal(got, want) {
		t.Errorf("DefaultAuthFiles = %v, want %v", got, want)
	}
}

func TestInsecureHosts(t *testing.T) {
	c := NewClient(ClientConfig{Insecure: []string{"reg.lan:5000", "other.lan"}, AuthFiles: []string{}})
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:5000", true},
		{"localhost:5000", true},
		{"[::1]:5000", true},
		{"reg.lan:5000", true},
		{"reg.lan:6000", false},
		{"other.lan:443", true},
		{"quay.io", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := c.isInsecure(tt.host); got != tt.want {
				t.Errorf("isInsecure(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

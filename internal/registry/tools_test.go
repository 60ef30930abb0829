package registry

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/testimage"
)

func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s is not installed (apt-get install skopeo buildah podman runc busybox-static)", tool)
	}
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	return string(out), err
}

// TestSkopeo checks the embedded registry against skopeo: anonymous
// inspect, a push with --dest-creds, and a refused push without.
func TestSkopeo(t *testing.T) {
	requireTool(t, "skopeo")
	e := startRegistry(t, "")
	h := e.Host()
	user, pass := e.PushCredentials()
	digest := push(t, h+"/ns/name:tag", randomImage(t, 4096, 2), pushAuth(e))
	c := NewClient(ClientConfig{AuthFiles: []string{}})

	t.Run("anonymous inspect", func(t *testing.T) {
		out, err := run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+h+"/ns/name:tag")
		if err != nil {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
		var got struct{ Digest string }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("skopeo inspect output: %v\n%s", err, out)
		}
		if got.Digest != digest {
			t.Errorf("skopeo sees digest %s, want %s", got.Digest, digest)
		}
	})
	tests := []struct {
		name   string
		creds  []string
		dst    string
		wantOK bool
	}{
		{"copy with push credentials", []string{"--dest-creds", user + ":" + pass}, "ns/copied:v1", true},
		{"copy without credentials refused", nil, "ns/anon:v1", false},
		{"copy with a wrong password refused", []string{"--dest-creds", user + ":nope"}, "ns/wrong:v1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"copy", "--src-tls-verify=false", "--dest-tls-verify=false"}, tt.creds...)
			args = append(args, "docker://"+h+"/ns/name:tag", "docker://"+h+"/"+tt.dst)
			out, err := run(t, "skopeo", args...)
			if tt.wantOK && err != nil {
				t.Fatalf("skopeo copy: %v\n%s", err, out)
			}
			if !tt.wantOK && err == nil {
				t.Fatalf("skopeo copy succeeded, want refusal\n%s", out)
			}
			if !tt.wantOK && !strings.Contains(strings.ToLower(out), "unauthorized") {
				t.Errorf("refusal does not say unauthorized:\n%s", out)
			}
			ok, err := c.Exists(t.Context(), h+"/"+tt.dst)
			if err != nil || ok != tt.wantOK {
				t.Errorf("after copy %s exists=%v err=%v, want %v", tt.dst, ok, err, tt.wantOK)
			}
		})
	}
}

// TestBuildahPush pushes the local busybox base image with buildah.
func TestBuildahPush(t *testing.T) {
	requireTool(t, "buildah")
	img := testimage.Busybox(t)
	e := startRegistry(t, "")
	h := e.Host()
	user, pass := e.PushCredentials()
	c := NewClient(ClientConfig{AuthFiles: []string{}})

	tests := []struct {
		name   string
		creds  []string
		dst    string
		wantOK bool
	}{
		{"push with credentials", []string{"--creds", user + ":" + pass}, "library/busybox:test", true},
		{"anonymous push refused", nil, "library/anon:test", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"push", "--tls-verify=false"}, tt.creds...)
			args = append(args, img, "docker://"+h+"/"+tt.dst)
			out, err := run(t, "buildah", args...)
			if tt.wantOK && err != nil {
				t.Fatalf("buildah push: %v\n%s", err, out)
			}
			if !tt.wantOK && err == nil {
				t.Fatalf("buildah push succeeded, want refusal\n%s", out)
			}
			ok, err := c.Exists(t.Context(), h+"/"+tt.dst)
			if err != nil || ok != tt.wantOK {
				t.Errorf("after push %s exists=%v err=%v, want %v", tt.dst, ok, err, tt.wantOK)
			}
		})
	}
	if err := pullAll(t, h+"/library/busybox:test"); err != nil {
		t.Fatalf("pull what buildah pushed: %v", err)
	}
	// A retag of what buildah pushed, then skopeo reads it anonymously.
	cc := clientFor(&recorder{}, e)
	if err := cc.Tag(t.Context(), h+"/library/busybox:test", h+"/library/busybox:rc"); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		if out, err := run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+h+"/library/busybox:rc"); err != nil {
			t.Errorf("skopeo inspect :rc: %v\n%s", err, out)
		}
	}
}

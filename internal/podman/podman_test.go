package podman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/testimage"
)

func TestRunArgs(t *testing.T) {
	tests := []struct {
		name string
		opts RunOptions
		want []string
	}{
		{
			name: "image only",
			opts: RunOptions{Image: "img"},
			want: []string{"run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "img"},
		},
		{
			name: "everything",
			opts: RunOptions{Image: "img", Name: "c1", Detach: true, Remove: true, Network: "none", User: "1000",
				Env: []string{"A=1"}, Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo hi"}},
			want: []string{"run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--name", "c1", "--detach", "--rm",
				"--network", "none", "--user", "1000", "--env", "A=1", "--entrypoint", `["sh","-c"]`, "img", "echo hi"},
		},
		{
			name: "interactive keeps stdin open",
			opts: RunOptions{Image: "img", Detach: true, Interactive: true},
			want: []string{"run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--detach", "--interactive", "img"},
		},
		{
			name: "empty entrypoint clears the image's",
			opts: RunOptions{Image: "img", Entrypoint: []string{}, Cmd: []string{"true"}},
			want: []string{"run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--entrypoint", "", "img", "true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RunArgs(tt.opts); !slices.Equal(got, tt.want) {
				t.Errorf("RunArgs\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		ref  string
		want bool
	}{
		{"127.0.0.1:5000/app/job:test", true},
		{"docker://127.0.0.1:5000/app/job:test", true},
		{"localhost:5000/x", true},
		{"localhost/x", true},
		{"[::1]:5000/x", true},
		{"registry.example.com/x", false},
		{"quay.io:443/x", false},
		{"library/busybox", false},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			if got := isLoopback(tt.ref); got != tt.want {
				t.Errorf("isLoopback(%q) = %v, want %v", tt.ref, got, tt.want)
			}
		})
	}
}

func containerName(t *testing.T) string {
	return fmt.Sprintf("cccp-test-podman-%d", time.Now().UnixNano())
}

func TestRunAttached(t *testing.T) {
	image := testimage.Busybox(t)
	r := &Runner{}
	tests := []struct {
		name     string
		opts     RunOptions
		wantCode int
		wantOut  string
	}{
		{name: "exit code passes through", opts: RunOptions{Cmd: []string{"sh", "-c", "echo out; exit 3"}}, wantCode: 3, wantOut: "out"},
		{name: "entrypoint and env", opts: RunOptions{Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo $GREETING"}, Env: []string{"GREETING=hello"}}, wantOut: "hello"},
		{name: "no network", opts: RunOptions{Network: "none", Cmd: []string{"sh", "-c", "ls /sys/class/net | tr '\\n' ' '"}}, wantOut: "lo "},
		{name: "command not found is 127", opts: RunOptions{Cmd: []string{"/nonexistent"}}, wantCode: 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			tt.opts.Image, tt.opts.Remove, tt.opts.Log = image, true, &out
			code, err := r.Run(context.Background(), tt.opts)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("code %d output %q, want %d and %q", code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestRunMissingImageIsError(t *testing.T) {
	testimage.Require(t)
	r := &Runner{}
	_, err := r.Run(context.Background(), RunOptions{Image: "127.0.0.1:1/cccp/missing:none", Remove: true})
	if err == nil {
		t.Fatal("run of a missing image succeeded")
	}
}

func TestDetachedLifecycle(t *testing.T) {
	image := testimage.Busybox(t)
	r := &Runner{}
	ctx := context.Background()
	name := containerName(t)
	t.Cleanup(func() { r.Rm(context.Background(), name) })

	if _, err := r.Run(ctx, RunOptions{Image: image, Name: name, Detach: true, Cmd: []string{"sh", "-c", "echo started; exec sleep 60"}}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st, err := r.Inspect(ctx, name)
	if err != nil || !st.Running || st.Status != "running" || st.StartedAt.IsZero() {
		t.Fatalf("Inspect = %+v, %v; want running", st, err)
	}
	var out bytes.Buffer
	code, err := r.Exec(ctx, name, []string{"sh", "-c", "echo in-container; exit 4"}, &out)
	if err != nil || code != 4 || !strings.Contains(out.String(), "in-container") {
		t.Errorf("Exec = %d, %v, %q; want 4 and output", code, err, out.String())
	}
	logs, err := r.Logs(ctx, name, 5)
	if err != nil || !strings.Contains(logs, "started") {
		t.Errorf("Logs = %q, %v", logs, err)
	}
	if err := r.Stop(ctx, name, 0); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st, err := r.Inspect(ctx, name); err != nil || st.Running || st.Status != "exited" {
		t.Errorf("after stop: %+v, %v", st, err)
	}
	if err := r.Rm(ctx, name); err != nil {
		t.Fatalf("Rm: %v", err)
	}
	if err := r.Rm(ctx, name); err != nil {
		t.Errorf("second Rm: %v, want nil", err)
	}
	if _, err := r.Inspect(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after rm: %v, want ErrNotFound", err)
	}
}

func TestPullAndLabels(t *testing.T) {
	testimage.Busybox(t)
	host := testimage.Registry(t, "", "")
	ref := testimage.PushBusybox(t, host, "", "")
	r := &Runner{}
	ctx := context.Background()
	t.Cleanup(func() { r.RemoveImage(context.Background(), ref) })

	if err := r.Pull(ctx, ref, true); err != nil {
		t.Fatalf("Pull (loopback, TLS verification requested): %v", err)
	}
	labels, err := r.ImageLabels(ctx, ref)
	if err != nil {
		t.Fatalf("ImageLabels: %v", err)
	}
	if labels["io.cccp.testimage"] != "busybox-v1" {
		t.Errorf("labels = %v", labels)
	}
	if _, err := r.ImageLabels(ctx, "localhost/cccp/no-such-image:x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("labels of a missing image: %v, want ErrNotFound", err)
	}
}

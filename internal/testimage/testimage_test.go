package testimage

import (
	"os/exec"
	"strings"
	"testing"
)

func TestBusyboxAndPush(t *testing.T) {
	ref := Busybox(t)
	if again := Busybox(t); again != ref {
		t.Fatalf("second call = %q, want %q", again, ref)
	}
	out, err := exec.Command("podman", "--runtime", "runc", "run", "--rm",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
		ref, "sh", "-c", "sleep 0 && echo applets-ok").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applets-ok") {
		t.Fatalf("run %s: %v: %s", ref, err, out)
	}

	if _, err := exec.LookPath("skopeo"); err != nil {
		missing(t, "skopeo is not installed")
	}
	tests := []struct{ name, user, pass string }{
		{name: "anonymous registry"},
		{name: "registry with basic auth", user: "cccp", pass: "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := Registry(t, tt.user, tt.pass)
			pushed := PushBusybox(t, host, tt.user, tt.pass)
			if pushed != host+"/busybox:latest" {
				t.Errorf("pushed = %q", pushed)
			}
			args := []string{"inspect", "--tls-verify=false", "--raw"}
			if tt.user != "" {
				args = append(args, "--creds", tt.user+":"+tt.pass)
			}
			out, err := exec.Command("skopeo", append(args, "docker://"+pushed)...).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo inspect %s: %v: %s", pushed, err, out)
			}
			if tt.user != "" {
				if out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+pushed).CombinedOutput(); err == nil {
					t.Errorf("anonymous inspect of an auth registry succeeded: %s", out)
				}
			}
		})
	}
}

package local

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/testimage"
)

// TestInstancesKeepOffEachOthersRunImages: two cccp on one machine (two
// data folders) share root's image storage and both count runs from 1.
// The start of one, clearing the run images its crash left, must not
// remove the image the other just built for its run of the same number
// and project (it did when both were localhost/cccp/<repo>:run-<ID>: the
// other's push then failed with "image not known").
func TestInstancesKeepOffEachOthersRunImages(t *testing.T) {
	base := testimage.Busybox(t)
	ctx := context.Background()
	open := func() *Backend {
		b, err := New(Config{Dir: filepath.Join(t.TempDir(), "local"), Buildah: &buildah.Builder{}, Podman: &podman.Runner{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	spec := backend.BuildSpec{RunID: "1", Entry: &index.Entry{AppID: "acme", JobID: "web"}}
	crashed, running := open(), open()
	if a, b := crashed.localImage(spec), running.localImage(spec); a == b {
		t.Fatalf("both instances name run 1 of acme/web %s", a)
	}
	if again, _ := New(Config{Dir: crashed.cfg.Dir, Buildah: &buildah.Builder{}, Podman: &podman.Runner{}}); again.localImage(spec) != crashed.localImage(spec) {
		t.Errorf("a restart names run 1 %s, before %s", again.localImage(spec), crashed.localImage(spec))
	}
	// What a crash of the first left: the record of its run image.
	if err := crashed.noteImage(crashed.localImage(spec)); err != nil {
		t.Fatal(err)
	}
	// The other's run image, built and not pushed yet.
	mine := running.localImage(spec)
	if out, err := exec.Command("buildah", "tag", base, mine).CombinedOutput(); err != nil {
		t.Fatalf("buildah tag: %v: %s", err, out)
	}
	t.Cleanup(func() { running.cfg.Buildah.Remove(ctx, mine) })

	if err := crashed.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("buildah", "inspect", "--type", "image", mine).CombinedOutput(); err != nil {
		t.Errorf("the other instance's run image is gone after a start's clean-up: %v: %.200s", err, out)
	}
	if !strings.HasPrefix(mine, "localhost/cccp/"+running.instance+"/acme/web:run-1") {
		t.Errorf("run image %s", mine)
	}
}

package buildah

import (
	"context"
	"os/exec"
	"slices"
	"testing"
)

// TestStoreListAndRemove: what a storage holds is listed (named and
// intermediate images, working containers) and removed: a working
// container, then an image of two names (buildah refuses its ID alone),
// an image a container uses stays.
func TestStoreListAndRemove(t *testing.T) {
	ctx := context.Background()
	b := &Builder{}
	ownStorage(t, b)
	dir := newContext(t, "FROM localhost/busybox:latest\nCOPY a /a\nCMD [\"sh\"]\n", map[string]string{"a": "a"})
	const one, two = "localhost/storehyg-test/one:1", "localhost/storehyg-test/two:1"
	if _, err := b.Build(ctx, BuildRequest{ContextDir: dir, Image: one}); err != nil {
		t.Fatal(err)
	}
	buildah := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("buildah", append(b.globalArgs(), args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	buildah("tag", one, two)
	buildah("from", "--pull=never", "--name", "storehyg-ctr", one)

	imgs, err := b.StoreImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var built StoreImage
	for _, im := range imgs {
		if len(im.ID) != 64 {
			t.Errorf("image ID %q is not 64 hex digits", im.ID)
		}
		if slices.Contains(im.Names, one) {
			built = im
		}
	}
	// busybox, the COPY step, the image.
	if len(imgs) != 3 || !slices.Equal(built.Names, []string{one, two}) {
		t.Fatalf("images %+v; want 3 with %s named %s and %s", imgs, built.ID, one, two)
	}
	ids, err := b.DiffIDs(ctx, built.ID)
	if err != nil || len(ids) != 2 {
		t.Errorf("DiffIDs = %v, %v; want busybox's layer and the COPY's", ids, err)
	}

	if err := b.RemoveStoreImage(ctx, built); err == nil {
		t.Error("removed an image a working container uses")
	}
	ctrs, err := b.StoreContainers(ctx)
	if err != nil || len(ctrs) != 1 || ctrs[0].Name != "storehyg-ctr" || !ctrs[0].Builder || ctrs[0].ImageID != built.ID {
		t.Fatalf("containers %+v, %v; want storehyg-ctr of %s", ctrs, err, built.ID)
	}
	for range 2 { // the second finds nothing, which is not an error
		if err := b.RemoveContainer(ctx, ctrs[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := b.RemoveStoreImage(ctx, built); err != nil {
			t.Fatal(err)
		}
	}
	// buildah removes the COPY step's intermediate image with its only child.
	if imgs, _ := b.StoreImages(ctx); len(imgs) != 1 || !slices.Contains(imgs[0].Names, "localhost/busybox:latest") {
		t.Errorf("after the removal: %+v; want busybox alone", imgs)
	}
	if ctrs, _ := b.StoreContainers(ctx); len(ctrs) != 0 {
		t.Errorf("containers after the removal: %+v", ctrs)
	}
}

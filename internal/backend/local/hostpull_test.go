package local

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/cccp-project/cccp/internal/podman"
	"github.com/cccp-project/cccp/internal/testimage"
)

// TestHostPullsRemoveOnlyWhatCccpPulled: an image that test stages
// without a sandbox pulled goes when the last of them ends; one that was
// there before cccp pulled it stays (the machine's storage is shared).
func TestHostPullsRemoveOnlyWhatCccpPulled(t *testing.T) {
	ctx := context.Background()
	root, runRoot := testimage.Storage(t)
	pod := &podman.Runner{Root: root, RunRoot: runRoot}
	ref := testimage.PushBusybox(t, testimage.Registry(t, "", ""), "", "")
	there := func() bool {
		_, err := pod.ImageLabels(ctx, ref)
		if err != nil && !errors.Is(err, podman.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	h := &hostPulls{log: slog.New(slog.DiscardHandler)}

	first, err := h.pull(ctx, pod, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.pull(ctx, pod, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	first()
	if !there() {
		t.Fatal("the image went while a second stage still used it")
	}
	second()
	if there() {
		t.Fatal("the image cccp pulled stayed after its last stage")
	}

	if err := pod.Pull(ctx, ref, false); err != nil { // the operator's own pull
		t.Fatal(err)
	}
	done, err := h.pull(ctx, pod, ref, false)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if !there() {
		t.Error("cccp removed an image that was there before its pull")
	}
}

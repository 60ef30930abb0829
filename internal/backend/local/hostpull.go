package local

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cccp-project/cccp/internal/podman"
)

// hostPulls are the images that test stages without a sandbox pulled into
// cccp's podman storage, which is the machine's: a box removes its pulls
// with its storage, these would stay for ever. Each is counted per stage
// using it; the last stage to end removes it, unless it was there before
// cccp pulled it (someone else's: the operator pulled that digest too).
type hostPulls struct {
	log  *slog.Logger
	mu   sync.Mutex
	refs map[string]*hostPull
}

type hostPull struct {
	stages  int
	foreign bool // there before cccp's pull: never removed by cccp
}

// pull pulls ref with pod for one stage and returns what ends the stage's
// use of it.
func (h *hostPulls) pull(ctx context.Context, pod *podman.Runner, ref string, tlsVerify bool) (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.refs[ref]
	if p == nil {
		_, err := pod.ImageLabels(ctx, ref)
		p = &hostPull{foreign: !errors.Is(err, podman.ErrNotFound)}
	}
	if err := pod.Pull(ctx, ref, tlsVerify); err != nil {
		if p.stages == 0 && !p.foreign {
			h.remove(pod, ref) // a pull cut off half-way
		}
		return nil, err
	}
	if h.refs == nil {
		h.refs = map[string]*hostPull{}
	}
	p.stages++
	h.refs[ref] = p
	return func() { h.release(pod, ref) }, nil
}

func (h *hostPulls) release(pod *podman.Runner, ref string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.refs[ref]
	if p == nil {
		return
	}
	if p.stages--; p.stages > 0 {
		return
	}
	delete(h.refs, ref)
	if p.foreign {
		return
	}
	h.remove(pod, ref)
}

// remove removes what cccp pulled; a container still using it keeps it.
func (h *hostPulls) remove(pod *podman.Runner, ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pod.RemoveUnusedImage(ctx, ref); err != nil {
		h.log.Warn("remove the image a test stage pulled", "image", ref, "err", err)
	}
}

package local

import (
	"context"
	"fmt"
	"io"

	"github.com/cccp-project/cccp/internal/buildah"
	"github.com/cccp-project/cccp/internal/idpool"
)

// ReasonNoBuildIDs is a build that got no id range (its stage ended while
// every range was in use).
const ReasonNoBuildIDs = "BuildIDsUnavailable"

// buildRange is the id range one build holds while buildah runs.
type buildRange struct{ r *idpool.Range }

// buildIDs takes a range of host ids for a build's RUN steps, waiting
// while every range is in use by other builds (of this or another cccp on
// the machine). Without Config.BuildIDs it says in the build's log that
// RUN steps run as the host's root.
func (b *Backend) buildIDs(ctx context.Context, log io.Writer) (*buildRange, error) {
	if b.cfg.BuildIDs == nil {
		fmt.Fprintln(log, "cccp: warning: no build id ranges configured: RUN steps run as root on this host")
		return &buildRange{}, nil
	}
	r, ok, err := b.cfg.BuildIDs.TryAcquire()
	if err == nil && !ok {
		fmt.Fprintf(log, "cccp: all %d build id ranges are in use; waiting for one\n", b.cfg.BuildIDs.Len())
		r, err = b.cfg.BuildIDs.Acquire(ctx)
	}
	if err != nil {
		return nil, stageErr(ReasonNoBuildIDs, fmt.Errorf("build id range: %w", err))
	}
	fmt.Fprintf(log, "cccp: RUN steps run in a user namespace: root is host uid %d, gid %d (%d ids)\n", r.UID, r.GID, r.Size)
	return &buildRange{r: r}, nil
}

func (br *buildRange) idMap() *buildah.IDMap {
	if br.r == nil {
		return nil
	}
	return &buildah.IDMap{UID: br.r.UID, GID: br.r.GID, Size: br.r.Size}
}

// release gives the range back; what still runs as its ids (a RUN
// step's container that outlived buildah) is killed first, and a range
// whose processes do not die is held back (said in the build's log).
func (br *buildRange) release(log io.Writer) {
	if br.r != nil {
		if err := br.r.Release(); err != nil {
			fmt.Fprintf(log, "cccp: warning: %v\n", err)
		}
	}
}

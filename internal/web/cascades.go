package web

import (
	"context"
	"slices"

	"github.com/cccp-project/cccp/internal/store"
)

// CascadeReader reads the open rebuild cascades; *store.DB implements it.
type CascadeReader interface {
	OpenCascades(ctx context.Context) ([]*store.Cascade, error)
}

// queueView is the dashboard's picture of the work in hand: the runs
// queued or running, and each open cascade with what waits on what.
type queueView struct {
	Runs     []runRow
	Cascades []cascadeView
}

type cascadeView struct {
	ID, Root, RootRun, Digest string
	// Waves are the nodes by depth below the root.
	Waves [][]cascadeNodeView
}

type cascadeNodeView struct {
	Project, State, Run string
	// WaitsOn are the parents it still waits on; Note says why a stopped
	// node will not build.
	WaitsOn []string
	Note    string
}

// queueLimit bounds the runs listed as queued or running.
const queueLimit = 50

// queue reads the runs in hand and the open cascades.
func (s *Server) queue(ctx context.Context) queueView {
	var v queueView
	now := s.now()
	runs, err := s.cfg.Runs.Runs(ctx, store.RunFilter{States: []store.State{store.Queued, store.Running}, Limit: queueLimit})
	if err != nil {
		s.log.Warn("dashboard: queued runs", "err", err)
	}
	slices.Reverse(runs) // oldest first: the order they are worked in
	for _, r := range runs {
		v.Runs = append(v.Runs, s.runRow(now, r))
	}
	if s.cfg.Cascades == nil {
		return v
	}
	open, err := s.cfg.Cascades.OpenCascades(ctx)
	if err != nil {
		s.log.Warn("dashboard: open cascades", "err", err)
	}
	for _, c := range open {
		v.Cascades = append(v.Cascades, cascadeOf(c))
	}
	return v
}

func cascadeOf(c *store.Cascade) cascadeView {
	v := cascadeView{ID: c.ID, Root: c.Root, RootRun: c.RootRun, Digest: c.Digest}
	depth := map[string]int{c.Root: -1}
	state := map[string]string{c.Root: store.CascadeDelivered}
	for _, n := range c.Nodes {
		state[n.Project] = n.State
	}
	for _, n := range c.Nodes {
		d := 0
		nv := cascadeNodeView{Project: n.Project, State: n.State, Run: n.Run, Note: n.Note}
		for _, p := range n.WaitsOn {
			if pd, ok := depth[p]; ok && pd+1 > d {
				d = pd + 1
			}
			if n.State == store.CascadeWaiting && (state[p] == store.CascadeWaiting || state[p] == store.CascadeQueued) {
				nv.WaitsOn = append(nv.WaitsOn, p)
			}
		}
		depth[n.Project] = d
		for len(v.Waves) <= d {
			v.Waves = append(v.Waves, nil)
		}
		v.Waves[d] = append(v.Waves[d], nv)
	}
	return v
}

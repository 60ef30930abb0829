package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cccp-project/cccp/internal/types"
)

// Cascades: the rebuilds a parent's new image starts (internal/cascade
// plans them, the pipeline queues them). The buckets are created by the
// first write that needs them, so reading a database without them is the
// same as reading one without cascades:
//
//	v1/
//	  cascades/
//	    <seq>                   -> JSON Cascade without its nodes, with the count of open ones
//	  cascade_nodes/
//	    <seq> <project>         -> JSON CascadeNode and its place in the plan; one record
//	                               per node, so a step writes only the nodes it changed
//	                               (seq is 8 bytes: a prefix scan of one cascade is exact)
//	  cascades_open/
//	    <seq>                   -> empty; cascades with a node not yet settled
//	  cascade_roots/
//	    <run seq>               -> <seq> of the cascade that run's new image started
//	  delivered/
//	    <project>               -> JSON delivered: the digest a branch run delivered last,
//	                               which run that was, and the digest before it
var (
	bucketCascades     = []byte("cascades")
	bucketCascadeNodes = []byte("cascade_nodes")
	bucketCascadesOpen = []byte("cascades_open")
	bucketCascadeRoots = []byte("cascade_roots")
	bucketDelivered    = []byte("delivered")
)

// The states of a cascade node (internal/cascade.State spells them alike).
const (
	CascadeWaiting   = "waiting"
	CascadeQueued    = "queued"
	CascadeDelivered = "delivered"
	CascadeUnchanged = "unchanged"
	CascadeFailed    = "failed"
	CascadeCancelled = "cancelled"
	CascadeStopped   = "stopped"
)

// Cascade is the set of descendants one delivered image rebuilds.
type Cascade struct {
	ID      string // decimal sequence, assigned by FinishRun
	Root    string // project whose new image started it
	RootRun string
	Digest  string // the root's new digest
	Created time.Time
	// Finished is set once every node has settled.
	Finished time.Time `json:",omitempty"`
	// Nodes are in the plan's order (parents before children).
	Nodes []CascadeNode `json:"-"`
	// Open counts the nodes waiting or queued.
	Open int

	// NewRun, when set on a cascade a CascadeStep starts, makes the run of
	// an open node: FinishRun stores it in the same transaction, queued,
	// waiting on the node's parents (Run.WaitsOn) unless the node is
	// queued already, so the whole cascade is queued at once. When a later
	// step settles the parents, FinishRun releases the run (queued), or
	// ends it skipped (unchanged, stopped). Without NewRun the caller
	// queues the runs of queued nodes itself (BindCascadeRun).
	NewRun func(c *Cascade, n *CascadeNode) *Run `json:"-"`
	// Runs are the runs of this cascade that the transaction created or
	// changed (released, skipped, still waiting on fewer parents), as
	// stored: the caller's queue follows them.
	Runs []*Run `json:"-"`
}

// Note on skipped runs of nodes that were never built.
const noteUnchanged = "parent unchanged: no parent in the cascade delivered a new image"

// CascadeNode is one descendant of a cascade.
type CascadeNode struct {
	Project string
	// WaitsOn are the projects of this cascade (the root among them) it
	// is queued after.
	WaitsOn []string
	State   string // CascadeWaiting, CascadeQueued, ...
	// Run is the run that rebuilt it, or, for a stopped node, the skipped
	// run that records why ("waiting on X, which failed").
	Run  string `json:",omitempty"`
	Note string `json:",omitempty"`
	// Blame is, for a stopped node, the project whose failure stopped it.
	Blame string `json:",omitempty"`
	// Next are the nodes that wait on this one.
	Next []string `json:",omitempty"`
}

type nodeRecord struct {
	Order int
	CascadeNode
}

func openState(state string) bool { return state == CascadeWaiting || state == CascadeQueued }

// CascadePart is the open cascade a finishing run belongs to, as a
// CascadeStep sees it: the cascade without its nodes, and the nodes read
// (and written back) one by one.
type CascadePart struct {
	*Cascade
	root    *bolt.Bucket
	sk      []byte
	touched map[string]*nodeRecord
	was     map[string]string // state when read
	err     error
}

// Node returns the node of project, or nil when the cascade has none.
// Changes to it are stored when the step returns.
func (p *CascadePart) Node(project string) *CascadeNode {
	if n, ok := p.touched[project]; ok {
		if n == nil {
			return nil
		}
		return &n.CascadeNode
	}
	n, err := getNode(p.root, p.sk, project)
	if err != nil {
		p.err = err
	}
	p.touched[project] = n
	if n == nil {
		return nil
	}
	p.was[project] = n.State
	return &n.CascadeNode
}

func nodeKey(sk []byte, project string) []byte {
	return append(append(make([]byte, 0, len(sk)+len(project)), sk...), project...)
}

func getNode(root *bolt.Bucket, sk []byte, project string) (*nodeRecord, error) {
	b := root.Bucket(bucketCascadeNodes)
	if b == nil {
		return nil, nil
	}
	v := b.Get(nodeKey(sk, project))
	if v == nil {
		return nil, nil
	}
	n := new(nodeRecord)
	if err := json.Unmarshal(v, n); err != nil {
		return nil, &DecodeError{Bucket: "cascade_nodes", Key: project, Err: err}
	}
	return n, nil
}

func putNode(root *bolt.Bucket, sk []byte, n *nodeRecord) error {
	b, err := root.CreateBucketIfNotExists(bucketCascadeNodes)
	if err != nil {
		return err
	}
	v, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return b.Put(nodeKey(sk, n.Project), v)
}

// Node returns the node of project, or nil.
func (c *Cascade) Node(project string) *CascadeNode {
	for i := range c.Nodes {
		if c.Nodes[i].Project == project {
			return &c.Nodes[i]
		}
	}
	return nil
}

// DeliveredDigest is the digest a passed branch run delivered, or "".
func (r *Run) DeliveredDigest() string {
	if r.Kind != types.KindBranch || r.State != Passed {
		return ""
	}
	var digest string
	for _, s := range r.Stages {
		switch {
		case s.Name == types.StageBuild:
			digest = s.Digest
		case s.Name == types.StageDeliver && s.State != Passed:
			return ""
		}
	}
	return digest
}

type delivered struct {
	Digest, Run, Prev string
}

// CascadeStep decides, inside FinishRun's transaction, what a finished run
// means for cascades. run is the run as fn left it; prev is the digest its
// project had delivered before this run ("" when none is known); part is
// the open cascade the run belongs to (nil when none), which step may
// change (settle the run's node, queue or stop others). step returns a new
// cascade rooted at run to record, or nil; FinishRun records at most one
// per run, however often it is called.
type CascadeStep func(run *Run, prev string, part *CascadePart) (start *Cascade)

// FinishRun is UpdateRun for a run's final result that also keeps the
// cascades in the same transaction, so a crash never keeps one without the
// other. After fn, when the run is done, step is called (see CascadeStep).
// Every node step leaves stopped without a run gets a skipped run that
// says why (its Note), so the child's page and the run list show it. It
// returns the run and the cascades it changed (without their nodes) or
// started.
func (db *DB) FinishRun(ctx context.Context, id string, fn func(*Run) error, step CascadeStep) (*Run, []*Cascade, error) {
	seq, err := parseRunID(id)
	if err != nil {
		return nil, nil, err
	}
	var out *Run
	var changed []*Cascade
	err = db.update(ctx, func(root *bolt.Bucket) error {
		changed = nil
		r, err := updateRun(root, id, seq, fn)
		if err != nil {
			return err
		}
		out = r
		if !r.State.Done() || step == nil {
			return nil
		}
		prev, err := recordDelivered(root, r)
		if err != nil {
			return err
		}
		var part *CascadePart
		if r.Cause.Cascade != "" {
			if part, err = openPart(root, r.Cause.Cascade); err != nil {
				return err
			}
		}
		start := step(r, prev, part)
		if part != nil {
			if err := putPart(root, part); err != nil {
				return err
			}
			changed = append(changed, part.Cascade)
		}
		if start == nil {
			return nil
		}
		roots, err := root.CreateBucketIfNotExists(bucketCascadeRoots)
		if err != nil {
			return err
		}
		if roots.Get(seqKey(seq)) != nil {
			return nil // started by an earlier call for this run
		}
		b, err := root.CreateBucketIfNotExists(bucketCascades)
		if err != nil {
			return err
		}
		cseq, err := b.NextSequence()
		if err != nil {
			return err
		}
		start.ID, start.Root, start.RootRun = strconv.FormatUint(cseq, 10), r.Project, r.ID
		if start.Created.IsZero() {
			start.Created = time.Now().UTC()
		}
		if err := roots.Put(seqKey(seq), seqKey(cseq)); err != nil {
			return err
		}
		if err := putCascade(root, start); err != nil {
			return err
		}
		changed = append(changed, start)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("finish run %s: %w", id, err)
	}
	return out, changed, nil
}

// recordDelivered keeps delivered/<project> and returns the digest the
// project had before r. Called again for the same run, it returns the same.
func recordDelivered(root *bolt.Bucket, r *Run) (string, error) {
	b, err := root.CreateBucketIfNotExists(bucketDelivered)
	if err != nil {
		return "", err
	}
	var d delivered
	if v := b.Get([]byte(r.Project)); v != nil {
		if err := json.Unmarshal(v, &d); err != nil {
			return "", &DecodeError{Bucket: "delivered", Key: r.Project, Err: err}
		}
	}
	if d.Run == r.ID {
		return d.Prev, nil
	}
	digest := r.DeliveredDigest()
	if digest == "" {
		return d.Digest, nil
	}
	v, err := json.Marshal(delivered{Digest: digest, Run: r.ID, Prev: d.Digest})
	if err != nil {
		return "", err
	}
	return d.Digest, b.Put([]byte(r.Project), v)
}

func cascadeSeq(id string) ([]byte, error) {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("cascade %q: %w", id, ErrNotFound)
	}
	return seqKey(seq), nil
}

// openPart loads cascade id, without its nodes, when it is still open
// (nil otherwise).
func openPart(root *bolt.Bucket, id string) (*CascadePart, error) {
	sk, err := cascadeSeq(id)
	if err != nil {
		return nil, err
	}
	if open := root.Bucket(bucketCascadesOpen); open == nil || open.Get(sk) == nil {
		return nil, nil
	}
	c, err := getHeader(root, sk)
	if err != nil {
		return nil, err
	}
	return &CascadePart{Cascade: c, root: root, sk: sk, touched: map[string]*nodeRecord{}, was: map[string]string{}}, nil
}

// putPart writes the nodes a step read, and the cascade's count of open
// nodes.
func putPart(root *bolt.Bucket, p *CascadePart) error {
	if p.err != nil {
		return p.err
	}
	now := time.Now().UTC()
	for project, n := range p.touched {
		if n == nil {
			continue
		}
		if err := stopRun(root, p.Cascade, &n.CascadeNode, now); err != nil {
			return err
		}
		if p.was[project] == CascadeWaiting {
			if err := p.followRun(&n.CascadeNode, now); err != nil {
				return err
			}
		}
		if openState(p.was[project]) && !openState(n.State) {
			p.Open--
		} else if !openState(p.was[project]) && openState(n.State) {
			p.Open++
		}
		if err := putNode(root, p.sk, n); err != nil {
			return err
		}
	}
	return putHeader(root, p.Cascade, now)
}

// followRun brings the waiting run of n (made with its cascade) in step
// with n, which was waiting when the step began: released when n was
// queued, ended skipped when n was stopped or settled unchanged, or waiting
// on fewer parents. A run that is no longer waiting (cancelled meanwhile)
// is left as it is. A run that a push was folded into while it waited
// still builds (released) when its node ends without it: the push asked
// for that build.
func (p *CascadePart) followRun(n *CascadeNode, now time.Time) error {
	if n.Run == "" {
		return nil
	}
	seq, err := parseRunID(n.Run)
	if err != nil {
		return err
	}
	pending := p.pending(n)
	r, err := updateRun(p.root, n.Run, seq, func(r *Run) error {
		if r.State != Queued || len(r.WaitsOn) == 0 {
			return errNoChange
		}
		switch {
		case n.State == CascadeWaiting:
			if slices.Equal(r.WaitsOn, pending) {
				return errNoChange
			}
			r.WaitsOn = pending
		case n.State == CascadeQueued || len(r.Folded) > 0:
			r.WaitsOn, r.Released = nil, now
		default: // stopped, unchanged
			r.WaitsOn, r.State, r.Finished = nil, Skipped, now
			r.Error = n.Note
			if n.State == CascadeUnchanged {
				r.Error = noteUnchanged
			}
			for i := range r.Stages {
				if r.Stages[i].State == Queued {
					r.Stages[i].State = Skipped
				}
			}
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cascade %s: run %s of %s: %w", p.ID, n.Run, n.Project, err)
	}
	p.Runs = append(p.Runs, r)
	return nil
}

// errNoChange ends an updateRun that has nothing to write.
var errNoChange = errors.New("no change")

// pending are the parents of n in its cascade that have not settled.
func (p *CascadePart) pending(n *CascadeNode) []string {
	var out []string
	for _, k := range n.WaitsOn {
		if k == p.Root {
			continue
		}
		if pn := p.Node(k); pn == nil || openState(pn.State) {
			out = append(out, k)
		}
	}
	return out
}

// stopRun gives a stopped node without a run a skipped run that says why.
func stopRun(root *bolt.Bucket, c *Cascade, n *CascadeNode, now time.Time) error {
	if n.State != CascadeStopped || n.Run != "" {
		return nil
	}
	skipped := &Run{Project: n.Project, Kind: types.KindBranch, State: Skipped, Error: n.Note,
		Cause: Cause{Kind: types.CauseParent, Parent: c.Root, Cascade: c.ID, Detail: "cascade " + c.ID}, Finished: now}
	if err := createRun(root, skipped); err != nil {
		return fmt.Errorf("cascade %s: record stopped %s: %w", c.ID, n.Project, err)
	}
	n.Run = skipped.ID
	return nil
}

// putHeader writes the cascade without its nodes and keeps cascades_open
// in step with its count of open nodes.
func putHeader(root *bolt.Bucket, c *Cascade, now time.Time) error {
	sk, err := cascadeSeq(c.ID)
	if err != nil {
		return err
	}
	open, err := root.CreateBucketIfNotExists(bucketCascadesOpen)
	if err != nil {
		return err
	}
	if c.Open <= 0 {
		if c.Finished.IsZero() {
			c.Finished = now
		}
		err = open.Delete(sk)
	} else {
		err = open.Put(sk, nil)
	}
	if err != nil {
		return err
	}
	b, err := root.CreateBucketIfNotExists(bucketCascades)
	if err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode cascade %s: %w", c.ID, err)
	}
	b.FillPercent = 0.9
	return b.Put(sk, v)
}

func getHeader(root *bolt.Bucket, sk []byte) (*Cascade, error) {
	b := root.Bucket(bucketCascades)
	if b == nil {
		return nil, fmt.Errorf("cascade %d: %w", binary.BigEndian.Uint64(sk), ErrNotFound)
	}
	v := b.Get(sk)
	if v == nil {
		return nil, fmt.Errorf("cascade %d: %w", binary.BigEndian.Uint64(sk), ErrNotFound)
	}
	c := new(Cascade)
	if err := json.Unmarshal(v, c); err != nil {
		return nil, &DecodeError{Bucket: "cascades", Key: strconv.FormatUint(binary.BigEndian.Uint64(sk), 10), Err: err}
	}
	return c, nil
}

// getCascade reads a cascade with all its nodes, in the plan's order.
func getCascade(root *bolt.Bucket, sk []byte) (*Cascade, error) {
	c, err := getHeader(root, sk)
	if err != nil {
		return nil, err
	}
	b := root.Bucket(bucketCascadeNodes)
	if b == nil {
		return c, nil
	}
	var recs []nodeRecord
	cur := b.Cursor()
	for k, v := cur.Seek(sk); k != nil && bytes.HasPrefix(k, sk); k, v = cur.Next() {
		var n nodeRecord
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, &DecodeError{Bucket: "cascade_nodes", Key: string(k[len(sk):]), Err: err}
		}
		recs = append(recs, n)
	}
	slices.SortFunc(recs, func(a, b nodeRecord) int { return a.Order - b.Order })
	c.Nodes = make([]CascadeNode, len(recs))
	for i := range recs {
		c.Nodes[i] = recs[i].CascadeNode
	}
	return c, nil
}

// putCascade writes a new cascade with all its nodes, giving each stopped
// node a skipped run.
func putCascade(root *bolt.Bucket, c *Cascade) error {
	sk, err := cascadeSeq(c.ID)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	c.Open = 0
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if err := stopRun(root, c, n, now); err != nil {
			return err
		}
		if err := newRun(root, c, n, now); err != nil {
			return err
		}
		if openState(n.State) {
			c.Open++
		}
		if err := putNode(root, sk, &nodeRecord{Order: i, CascadeNode: *n}); err != nil {
			return err
		}
	}
	return putHeader(root, c, now)
}

// newRun stores the run of an open node of a new cascade, waiting on the
// node's parents (all but the root) unless the node is queued.
func newRun(root *bolt.Bucket, c *Cascade, n *CascadeNode, now time.Time) error {
	if c.NewRun == nil || n.Run != "" || !openState(n.State) {
		return nil
	}
	r := c.NewRun(c, n)
	if r == nil {
		return nil
	}
	r.State, r.WaitsOn, r.Released = Queued, nil, time.Time{}
	if n.State == CascadeQueued {
		r.Released = now
	} else {
		for _, k := range n.WaitsOn {
			if k != c.Root {
				r.WaitsOn = append(r.WaitsOn, k)
			}
		}
	}
	if err := createRun(root, r); err != nil {
		return fmt.Errorf("cascade %s: queue %s: %w", c.ID, n.Project, err)
	}
	n.Run = r.ID
	c.Runs = append(c.Runs, r)
	return nil
}

// ErrCascadeBound is returned by BindCascadeRun when the node already has
// another run.
var ErrCascadeBound = errors.New("cascade node already has a run")

// BindCascadeRun records run as the run of project's node in cascade id
// (after the pipeline queued it). Binding the same run again is a no-op.
func (db *DB) BindCascadeRun(ctx context.Context, id, project, run string) error {
	err := db.update(ctx, func(root *bolt.Bucket) error {
		sk, err := cascadeSeq(id)
		if err != nil {
			return err
		}
		n, err := getNode(root, sk, project)
		if err != nil {
			return err
		}
		switch {
		case n == nil:
			return fmt.Errorf("%s: %w", project, ErrNotFound)
		case n.Run == run:
			return nil
		case n.Run != "":
			return fmt.Errorf("%s has run %s: %w", project, n.Run, ErrCascadeBound)
		}
		n.Run = run
		return putNode(root, sk, n)
	})
	if err != nil {
		return fmt.Errorf("bind run %s to cascade %s: %w", run, id, err)
	}
	return nil
}

// OpenCascades returns the cascades with a node not yet settled, oldest
// first, for resuming after a restart and for the dashboard.
func (db *DB) OpenCascades(ctx context.Context) ([]*Cascade, error) {
	var out []*Cascade
	err := db.view(ctx, func(root *bolt.Bucket) error {
		open := root.Bucket(bucketCascadesOpen)
		if open == nil {
			return nil
		}
		return open.ForEach(func(sk, _ []byte) error {
			c, err := getCascade(root, sk)
			if err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// Cascades returns the newest cascades, at most limit (0: all).
func (db *DB) Cascades(ctx context.Context, limit int) ([]*Cascade, error) {
	var out []*Cascade
	err := db.view(ctx, func(root *bolt.Bucket) error {
		var err error
		out, err = newest(root.Bucket(bucketCascades), limit, func(k, _ []byte) (*Cascade, error) { return getCascade(root, k) })
		return err
	})
	return out, err
}

// CascadeStartedBy returns the cascade run's new image started, or
// ErrNotFound (none started, or not yet).
func (db *DB) CascadeStartedBy(ctx context.Context, run string) (*Cascade, error) {
	seq, err := parseRunID(run)
	if err != nil {
		return nil, err
	}
	var out *Cascade
	err = db.view(ctx, func(root *bolt.Bucket) error {
		roots := root.Bucket(bucketCascadeRoots)
		if roots == nil {
			return fmt.Errorf("cascade of run %s: %w", run, ErrNotFound)
		}
		sk := roots.Get(seqKey(seq))
		if sk == nil {
			return fmt.Errorf("cascade of run %s: %w", run, ErrNotFound)
		}
		out, err = getCascade(root, sk)
		return err
	})
	return out, err
}

// CascadeRun finds a run of project that cascade id queued but whose ID
// was not bound to its node (cccp stopped in between), or "". It reads the
// project's runs newer than the cascade's root run.
func (db *DB) CascadeRun(ctx context.Context, id, project string) (string, error) {
	var found string
	err := db.view(ctx, func(root *bolt.Bucket) error {
		sk, err := cascadeSeq(id)
		if err != nil {
			return err
		}
		c, err := getHeader(root, sk)
		if err != nil {
			return err
		}
		after, _ := strconv.ParseUint(c.RootRun, 10, 64)
		prefix := append([]byte(project), sep)
		cur := root.Bucket(bucketByProject).Cursor()
		k, _ := cur.Seek(append([]byte(project), sep+1))
		if k == nil {
			k, _ = cur.Last()
		} else {
			k, _ = cur.Prev()
		}
		runs := root.Bucket(bucketRuns)
		for ; k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); k, _ = cur.Prev() {
			rk := k[len(prefix):]
			if binary.BigEndian.Uint64(rk) <= after {
				return nil
			}
			r, err := decodeRun(rk, runs.Get(rk))
			if err != nil {
				continue
			}
			if r.Cause.Cascade == id {
				found = r.ID
				return nil
			}
		}
		return nil
	})
	return found, err
}

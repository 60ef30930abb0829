package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
//	    <seq>                   -> JSON Cascade
//	  cascades_open/
//	    <seq>                   -> empty; cascades with a node not yet settled
//	  cascade_roots/
//	    <run seq>               -> <seq> of the cascade that run's new image started
//	  delivered/
//	    <project>               -> JSON delivered: the digest a branch run delivered last,
//	                               which run that was, and the digest before it
var (
	bucketCascades     = []byte("cascades")
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
	Nodes    []CascadeNode
}

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

func (c *Cascade) settled() bool {
	for _, n := range c.Nodes {
		if n.State == CascadeWaiting || n.State == CascadeQueued {
			return false
		}
	}
	return true
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
type CascadeStep func(run *Run, prev string, part *Cascade) (start *Cascade)

// FinishRun is UpdateRun for a run's final result that also keeps the
// cascades in the same transaction, so a crash never keeps one without the
// other. After fn, when the run is done, step is called (see CascadeStep).
// Every node step leaves stopped without a run gets a skipped run that
// says why (its Note), so the child's page and the run list show it. It
// returns the run and the cascades it changed or started.
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
		var part *Cascade
		if r.Cause.Cascade != "" {
			if part, err = openCascade(root, r.Cause.Cascade); err != nil {
				return err
			}
		}
		start := step(r, prev, part)
		if part != nil {
			if err := putCascade(root, part); err != nil {
				return err
			}
			changed = append(changed, part)
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

// openCascade loads cascade id when it is still open (nil otherwise).
func openCascade(root *bolt.Bucket, id string) (*Cascade, error) {
	sk, err := cascadeSeq(id)
	if err != nil {
		return nil, err
	}
	if open := root.Bucket(bucketCascadesOpen); open == nil || open.Get(sk) == nil {
		return nil, nil
	}
	return getCascade(root, sk)
}

func getCascade(root *bolt.Bucket, sk []byte) (*Cascade, error) {
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

// putCascade writes c, giving each stopped node without a run a skipped
// run, and keeps cascades_open in step.
func putCascade(root *bolt.Bucket, c *Cascade) error {
	sk, err := cascadeSeq(c.ID)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.State != CascadeStopped || n.Run != "" {
			continue
		}
		skipped := &Run{Project: n.Project, Kind: types.KindBranch, State: Skipped, Error: n.Note,
			Cause: Cause{Kind: types.CauseParent, Parent: c.Root, Cascade: c.ID, Detail: "cascade " + c.ID}, Finished: now}
		if err := createRun(root, skipped); err != nil {
			return fmt.Errorf("cascade %s: record stopped %s: %w", c.ID, n.Project, err)
		}
		n.Run = skipped.ID
	}
	open, err := root.CreateBucketIfNotExists(bucketCascadesOpen)
	if err != nil {
		return err
	}
	if c.settled() {
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
		c, err := getCascade(root, sk)
		if err != nil {
			return err
		}
		n := c.Node(project)
		switch {
		case n == nil:
			return fmt.Errorf("%s: %w", project, ErrNotFound)
		case n.Run == run:
			return nil
		case n.Run != "":
			return fmt.Errorf("%s has run %s: %w", project, n.Run, ErrCascadeBound)
		}
		n.Run = run
		return putCascade(root, c)
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
		b := root.Bucket(bucketCascades)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Prev() {
			cc, err := getCascade(root, k)
			if err != nil {
				return err
			}
			out = append(out, cc)
		}
		return nil
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
		c, err := getCascade(root, sk)
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

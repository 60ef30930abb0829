package idpool

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// RangeSize is how many ids one range maps: uid and gid 0 to 65535 in the
// container, as a rootless user namespace has them.
const RangeSize = 65536

// Range is a contiguous block of host uids and one of gids, held until
// Release.
type Range struct {
	UID, GID uint32 // first host uid and gid
	Size     uint32
	lease    *Lease
	of       *Ranges
}

// Release kills what still runs as the range's ids (a build's container
// that outlived it) and gives the range back; a range whose processes do
// not die is held back from other builds, and the error says so.
func (r *Range) Release() error {
	if r.lease == nil || r.lease.f == nil {
		return nil
	}
	if err := r.of.c.Release(r.lease); err != nil {
		return fmt.Errorf("id range: %w", err)
	}
	return nil
}

// RangesConfig names the user whose subordinate ids are handed out.
type RangesConfig struct {
	// User owns the subordinate ranges (hack/install-deps.sh creates
	// cccp-build with 16 ranges' worth).
	User string
	// SubUID and SubGID are the files; default /etc/subuid, /etc/subgid.
	SubUID, SubGID string
	// Passwd and Group are the machine's users and groups, none of which
	// may have an id in the ranges; default /etc/passwd, /etc/group.
	Passwd, Group string
	// Dir holds the lock files; default DefaultDir.
	Dir string
	// Logger gets a line for every process killed to clear a range;
	// default discard.
	Logger *slog.Logger
	// ClearWait is how long a range's processes may take to die after
	// SIGKILL before the range is held back; default 2s.
	ClearWait time.Duration
}

// Ranges hands out RangeSize blocks of one user's subordinate ids.
type Ranges struct {
	c        *Cleared
	uid, gid uint32 // starts of the user's subordinate ranges
}

// NewRanges reads User's subordinate ranges and cuts them into as many
// RangeSize blocks as both hold. It fails when the user has none, or
// fewer than RangeSize ids, or when a user or group of the machine has an
// id in them (see CheckUnowned).
func NewRanges(cfg RangesConfig) (*Ranges, error) {
	files := IDFiles{SubUID: cfg.SubUID, SubGID: cfg.SubGID, Passwd: cfg.Passwd, Group: cfg.Group}.withDefaults()
	uidStart, uidCount, err := SubIDs(files.SubUID, cfg.User)
	if err != nil {
		return nil, err
	}
	gidStart, gidCount, err := SubIDs(files.SubGID, cfg.User)
	if err != nil {
		return nil, err
	}
	n := min(uidCount, gidCount) / RangeSize
	if n == 0 {
		return nil, fmt.Errorf("subordinate ids of %q: %d uids and %d gids, fewer than the %d one build maps", cfg.User, uidCount, gidCount, RangeSize)
	}
	if err := CheckUnowned(files, cfg.User, Span{uint32(uidStart), uint32(n * RangeSize)}, Span{uint32(gidStart), uint32(n * RangeSize)}); err != nil {
		return nil, err
	}
	keys := make([]string, n)
	ids := make([]IDs, n)
	for i := range keys {
		// Named by the host ids, so that processes configured with the
		// same user agree on every range.
		u, g := uint32(uidStart+uint64(i)*RangeSize), uint32(gidStart+uint64(i)*RangeSize)
		keys[i] = fmt.Sprintf("ids-%d-%d", u, g)
		ids[i] = IDs{UIDs: []Span{{u, RangeSize}}, GIDs: []Span{{g, RangeSize}}}
	}
	pool, err := New(cfg.Dir, keys)
	if err != nil {
		return nil, err
	}
	c, err := NewCleared(pool, ids, cfg.Logger, cfg.ClearWait)
	if err != nil {
		return nil, err
	}
	return &Ranges{c: c, uid: uint32(uidStart), gid: uint32(gidStart)}, nil
}

// Len is how many ranges there are (how many builds can run at once).
func (r *Ranges) Len() int { return r.c.Size() }

// Acquire takes a free range, waiting while all are held, until ctx
// ends. Like TryAcquire, it hands out only a range nothing runs as.
func (r *Ranges) Acquire(ctx context.Context) (*Range, error) {
	l, err := r.c.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("id ranges: %w", err)
	}
	return r.rangeOf(l), nil
}

// TryAcquire takes a free range; ok is false when all are held. Every
// process still running as one of the range's ids (left by a build of a
// cccp that crashed, or whose buildah was killed) is killed first; a
// range where one survives is held back and the next one tried.
func (r *Ranges) TryAcquire() (g *Range, ok bool, err error) {
	l, ok, err := r.c.TryAcquire()
	if err != nil || !ok {
		return nil, ok, err
	}
	return r.rangeOf(l), true, nil
}

func (r *Ranges) rangeOf(l *Lease) *Range {
	off := uint32(l.Index) * RangeSize
	return &Range{UID: r.uid + off, GID: r.gid + off, Size: RangeSize, lease: l, of: r}
}

// SubIDs finds user's first range in a subuid/subgid file ("name:start:count";
// the user's numeric id counts as its name, as newuidmap takes it). The
// range must lie above 0 and within 32 bits.
func SubIDs(file, name string) (start, count uint64, err error) {
	if name == "" {
		return 0, 0, fmt.Errorf("%s: no user named", file)
	}
	names := map[string]bool{name: true}
	if u, err := user.Lookup(name); err == nil {
		names[u.Uid] = true
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, fmt.Errorf("subordinate ids of %q: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(fields) != 3 || !names[fields[0]] {
			continue
		}
		start, err1 := strconv.ParseUint(fields[1], 10, 32)
		count, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || start == 0 || count == 0 || start+count-1 > math.MaxUint32 {
			return 0, 0, fmt.Errorf("%s:%d: bad range %q for %q", file, line, sc.Text(), name)
		}
		return start, count, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", file, err)
	}
	return 0, 0, fmt.Errorf("%s: no subordinate ids for %q (hack/install-deps.sh adds them)", file, name)
}

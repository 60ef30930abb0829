package idpool

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/user"
	"strconv"
	"strings"
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
}

// Release gives the range back.
func (r *Range) Release() error { return r.lease.Release() }

// RangesConfig names the user whose subordinate ids are handed out.
type RangesConfig struct {
	// User owns the subordinate ranges (hack/install-deps.sh creates
	// cccp-build with 16 ranges' worth).
	User string
	// SubUID and SubGID are the files; default /etc/subuid, /etc/subgid.
	SubUID, SubGID string
	// Dir holds the lock files; default DefaultDir.
	Dir string
}

// Ranges hands out RangeSize blocks of one user's subordinate ids.
type Ranges struct {
	pool     *Pool
	uid, gid uint32 // starts of the user's subordinate ranges
}

// NewRanges reads User's subordinate ranges and cuts them into as many
// RangeSize blocks as both hold. It fails when the user has none, or
// fewer than RangeSize ids.
func NewRanges(cfg RangesConfig) (*Ranges, error) {
	if cfg.SubUID == "" {
		cfg.SubUID = "/etc/subuid"
	}
	if cfg.SubGID == "" {
		cfg.SubGID = "/etc/subgid"
	}
	uidStart, uidCount, err := SubIDs(cfg.SubUID, cfg.User)
	if err != nil {
		return nil, err
	}
	gidStart, gidCount, err := SubIDs(cfg.SubGID, cfg.User)
	if err != nil {
		return nil, err
	}
	n := min(uidCount, gidCount) / RangeSize
	if n == 0 {
		return nil, fmt.Errorf("subordinate ids of %q: %d uids and %d gids, fewer than the %d one build maps", cfg.User, uidCount, gidCount, RangeSize)
	}
	keys := make([]string, n)
	for i := range keys {
		// Named by the host ids, so that processes configured with the
		// same user agree on every range.
		keys[i] = fmt.Sprintf("ids-%d-%d", uidStart+uint64(i)*RangeSize, gidStart+uint64(i)*RangeSize)
	}
	pool, err := New(cfg.Dir, keys)
	if err != nil {
		return nil, err
	}
	return &Ranges{pool: pool, uid: uint32(uidStart), gid: uint32(gidStart)}, nil
}

// Len is how many ranges there are (how many builds can run at once).
func (r *Ranges) Len() int { return r.pool.Size() }

// Acquire takes a free range, waiting while all are held.
func (r *Ranges) Acquire(ctx context.Context) (*Range, error) {
	l, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return r.rangeOf(l), nil
}

// TryAcquire takes a free range; ok is false when all are held.
func (r *Ranges) TryAcquire() (g *Range, ok bool, err error) {
	l, ok, err := r.pool.TryAcquire()
	if err != nil || !ok {
		return nil, ok, err
	}
	return r.rangeOf(l), true, nil
}

func (r *Ranges) rangeOf(l *Lease) *Range {
	off := uint32(l.Index) * RangeSize
	return &Range{UID: r.uid + off, GID: r.gid + off, Size: RangeSize, lease: l}
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

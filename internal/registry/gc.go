package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// GCStats counts what a garbage collection removed (or, in a dry run,
// would remove).
type GCStats struct {
	DryRun            bool
	ManifestsDeleted  int   // untagged manifests no tagged index refers to
	BlobsDeleted      int   // blobs no remaining manifest refers to
	BytesFreed        int64 // size of those blobs
	LayerLinksDeleted int   // per-repository links to such blobs
	// KeptRecent counts unreferenced manifests, blobs and links kept
	// because they were written or asked for less than
	// Config.GCKeepRecent ago (a push in progress).
	KeptRecent int
	// Paused is how long writes waited for the sweep.
	Paused time.Duration
}

// storage root inside the driver's root folder, as distribution lays it out.
const v2Root = "docker/registry/v2"

// ErrUnreadableManifest is wrapped by GC's error when a manifest it has to
// read to know what is in use (a tag's, a recent revision's, an index's
// child, a referrer's) cannot be read or is not a manifest: GC then
// deletes nothing, since every blob only that manifest names would look
// unused.
var ErrUnreadableManifest = errors.New("manifest cannot be read")

// GC removes untagged manifests and the blobs no tagged manifest refers
// to, while the registry serves; see "Garbage collection" in the package
// documentation.
// With dryRun nothing is deleted and the stats say what would be.
func (e *Embedded) GC(ctx context.Context, dryRun bool) (GCStats, error) {
	e.gcMu.Lock() // one collection at a time
	defer e.gcMu.Unlock()
	stats, err := e.gc(ctx, dryRun)
	if err != nil {
		e.gcAborts.Add(1)
		e.log.Error("registry garbage collection aborted", "dry_run", dryRun, "err", err)
		return stats, err
	}
	e.log.Info("registry garbage collected", "dry_run", dryRun, "manifests", stats.ManifestsDeleted,
		"blobs", stats.BlobsDeleted, "bytes", stats.BytesFreed, "kept_recent", stats.KeptRecent,
		"paused", stats.Paused)
	return stats, nil
}

// GCAborts counts the collections that ended with an error since Start
// (an unreadable manifest, a storage error, a cancelled context).
func (e *Embedded) GCAborts() int64 { return e.gcAborts.Load() }

// WriteMetrics writes GCAborts in Prometheus text format as the counter
// cccp_registry_gc_aborted_total.
func (e *Embedded) WriteMetrics(w io.Writer) error {
	_, err := fmt.Fprintf(w, "# HELP cccp_registry_gc_aborted_total Garbage collections of the embedded registry that ended with an error and deleted nothing more.\n"+
		"# TYPE cccp_registry_gc_aborted_total counter\ncccp_registry_gc_aborted_total %d\n", e.GCAborts())
	return err
}

func (e *Embedded) gc(ctx context.Context, dryRun bool) (GCStats, error) {
	now := e.now()
	g := &collector{root: filepath.Join(e.storageDir(), v2Root), cutoff: now.Add(-e.cfg.GCKeepRecent),
		marked: map[string]bool{}, manifests: map[string]*manifestRefs{}, read: e.gcRead}
	if g.read == nil {
		g.read = readSmall
	}
	if err := g.mark(ctx); err != nil {
		return GCStats{}, fmt.Errorf("gc: mark: %w", err)
	}

	e.writes.Lock()
	paused := time.Now()
	defer e.writes.Unlock()
	if err := g.mark(ctx); err != nil {
		return GCStats{}, fmt.Errorf("gc: mark again: %w", err)
	}
	g.touched = e.touchedSince(g.cutoff)
	// A manifest a client asked for recently may be pushed again under a
	// new tag (a retag of a moved tag's old image): it and what it refers
	// to stay. A touched digest may also be a layer, so one that is not a
	// manifest is no error; one that cannot be read is.
	for hex := range g.touched {
		if err := g.markManifest(hex, maybeManifest); err != nil {
			return GCStats{}, fmt.Errorf("gc: mark what was asked for: %w", err)
		}
	}
	stats, err := g.sweep(ctx, dryRun)
	stats.Paused = time.Since(paused)
	if err != nil {
		return stats, fmt.Errorf("gc: sweep: %w", err)
	}
	return stats, nil
}

// minTouchPrune is the size of the memory of touched digests below which
// touch does not look for old entries.
const minTouchPrune = 1024

// touch notes that a request with the push credentials named digest (a
// blob or a manifest) and was answered with success; anonymous requests
// touch nothing (see the handler). Entries older than GCKeepRecent are of no use to
// any later collection (its cutoff is later still), so they are dropped
// whenever the memory has doubled since the last look: it holds at most
// about twice the digests touched within GCKeepRecent, and only of blobs
// and manifests that exist or were just written (a failed request touches
// nothing), whatever clients ask for.
func (e *Embedded) touch(digest string) {
	hex, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !isHex(hex) {
		return
	}
	now := e.now()
	e.touchMu.Lock()
	defer e.touchMu.Unlock()
	e.touched[hex] = now
	if len(e.touched) < max(e.touchPruneAt, minTouchPrune) {
		return
	}
	cutoff := now.Add(-e.cfg.GCKeepRecent)
	for d, at := range e.touched {
		if !at.After(cutoff) {
			delete(e.touched, d)
		}
	}
	e.touchPruneAt = 2 * len(e.touched)
}

// touchedSince returns the digests named after cutoff and forgets older
// ones.
func (e *Embedded) touchedSince(cutoff time.Time) map[string]bool {
	e.touchMu.Lock()
	defer e.touchMu.Unlock()
	out := map[string]bool{}
	for d, at := range e.touched {
		if at.After(cutoff) {
			out[d] = true
		} else {
			delete(e.touched, d)
		}
	}
	e.touchPruneAt = 2 * len(e.touched)
	return out
}

// digestsOf returns the digests a registry request names: a blob or a
// manifest by digest in its path, and only for writes the query's digest
// (the PUT that commits an upload, a monolithic POST) or mount source (the POST of a
// cross-repository mount). Any client may add ?digest= to a read; those
// are not taken, or anonymous reads could fill GC's memory with made-up
// digests that each collection then opens.
func digestsOf(r *http.Request) (digests []string, byDigest bool) {
	p := r.URL.Path
	for _, kind := range []string{"/blobs/", "/manifests/"} {
		if i := strings.LastIndex(p, kind); i >= 0 {
			last := p[i+len(kind):]
			if strings.HasPrefix(last, "sha256:") {
				digests = append(digests, last)
				byDigest = true
			}
		}
	}
	var keys []string
	switch r.Method {
	case http.MethodPut:
		keys = []string{"digest"}
	case http.MethodPost: // a mount, or a monolithic upload
		keys = []string{"digest", "mount"}
	}
	q := r.URL.Query()
	for _, k := range keys {
		if d := q.Get(k); d != "" {
			digests = append(digests, d)
		}
	}
	return digests, byDigest
}

func isHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// maxManifest is the largest manifest distribution accepts (4 MiB).
const maxManifest = 4 << 20

// collector is one garbage collection over the storage folder.
type collector struct {
	root   string
	cutoff time.Time
	// read reads a blob's data file of at most limit bytes (readSmall; a
	// test makes it fail).
	read func(path string, limit int64) ([]byte, error)

	marked    map[string]bool          // blob hex digests in use
	manifests map[string]*manifestRefs // parsed manifests by hex digest
	repos     []*repoState
	touched   map[string]bool
}

// repoState is what the last mark saw of one repository.
type repoState struct {
	dir        string               // folder of the repository
	revisions  map[string]time.Time // manifest hex -> link time
	layerLinks map[string]time.Time // blob hex -> link time
}

// manifestRefs is what a manifest refers to.
type manifestRefs struct {
	blobs     []string // config and layers
	manifests []string // children of an index
	subject   string
}

// mark walks every repository and marks what its tags and recent
// revisions reach. A second call re-reads the links but parses only
// manifests it has not seen.
func (g *collector) mark(ctx context.Context) error {
	g.repos = nil
	err := filepath.WalkDir(filepath.Join(g.root, "repositories"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		switch d.Name() {
		case "_uploads", "_layers":
			return filepath.SkipDir
		case "_manifests":
			if err := ctx.Err(); err != nil {
				return err
			}
			repo, err := g.markRepo(filepath.Dir(p))
			if err != nil {
				return err
			}
			g.repos = append(g.repos, repo)
			return filepath.SkipDir
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (g *collector) markRepo(dir string) (*repoState, error) {
	r := &repoState{dir: dir}
	var err error
	if r.revisions, err = links(filepath.Join(dir, "_manifests", "revisions", "sha256")); err != nil {
		return nil, err
	}
	if r.layerLinks, err = links(filepath.Join(dir, "_layers", "sha256")); err != nil {
		return nil, err
	}
	tags, err := os.ReadDir(filepath.Join(dir, "_manifests", "tags"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, t := range tags {
		link := filepath.Join(dir, "_manifests", "tags", t.Name(), "current", "link")
		b, err := os.ReadFile(link)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a tag being written or deleted
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tag link %s: %w", ErrUnreadableManifest, link, err)
		}
		hex, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "sha256:")
		if !ok || !isHex(hex) {
			// The tag's manifest is unknown, and with it what it uses.
			return nil, fmt.Errorf("%w: tag link %s holds no digest (%.80q)", ErrUnreadableManifest, link, b)
		}
		if err := g.markManifest(hex, isManifest); err != nil {
			return nil, fmt.Errorf("tag %s: %w", link, err)
		}
	}
	for hex, at := range r.revisions {
		if at.After(g.cutoff) {
			if err := g.markManifest(hex, linkedManifest); err != nil {
				return nil, fmt.Errorf("recent revision in %s: %w", dir, err)
			}
		}
	}
	// Referrers: an untagged manifest whose subject is in use.
	for changed := true; changed; {
		changed = false
		for hex := range r.revisions {
			if g.marked[hex] {
				continue
			}
			m, err := g.parse(hex, linkedManifest)
			if err != nil {
				return nil, fmt.Errorf("revision in %s: %w", dir, err)
			}
			if m != nil && m.subject != "" && g.marked[m.subject] {
				if err := g.markManifest(hex, linkedManifest); err != nil {
					return nil, err
				}
				changed = true
			}
		}
	}
	return r, nil
}

// links reads a folder of <hex>/link entries into hex -> link time.
func links(dir string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, ent := range ents {
		if !isHex(ent.Name()) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, ent.Name(), "link"))
		if err != nil {
			continue // being written or removed
		}
		out[ent.Name()] = fi.ModTime()
	}
	return out, nil
}

func (g *collector) blobPath(hex string) string {
	return filepath.Join(g.root, "blobs", "sha256", hex[:2], hex)
}

// certainty says how sure GC is that a digest names a manifest, which
// decides what a blob that cannot be read or parsed means.
type certainty int

const (
	// isManifest: a tag points at it, or an index lists it. It must be
	// there and be a manifest.
	isManifest certainty = iota
	// linkedManifest: a repository's revision link names it. Its data
	// missing means an earlier collection deleted it before the link (the
	// manifest is gone, nothing more to lose); anything else is an error.
	linkedManifest
	// maybeManifest: a request named it; it may be a layer. Only a read
	// error (other than its absence) is an error.
	maybeManifest
)

// errNotManifest marks a blob that is too large or not JSON.
var errNotManifest = errors.New("not a manifest")

// readSmall reads the file at path if it is at most limit bytes long;
// errNotManifest when it is longer.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes (%d)", errNotManifest, limit, fi.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%w: larger than %d bytes", errNotManifest, limit)
	}
	return b, err
}

// parse reads manifest hex once. It returns nil and no error for a blob
// that, as far as sure says, need not be a manifest, and an error wrapping
// ErrUnreadableManifest that names the file for one that must be and
// cannot be read or parsed.
func (g *collector) parse(hex string, sure certainty) (*manifestRefs, error) {
	if m, ok := g.manifests[hex]; ok {
		return m, nil
	}
	data := filepath.Join(g.blobPath(hex), "data")
	b, err := g.read(data, maxManifest)
	if err == nil {
		var m *manifestRefs
		if m, err = parseManifest(b); err == nil {
			g.manifests[hex] = m
			return m, nil
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && sure != isManifest:
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %s: data missing", ErrUnreadableManifest, data)
	case errors.Is(err, errNotManifest) && sure == maybeManifest:
		return nil, nil // a layer
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrUnreadableManifest, data, err)
}

// parseManifest returns what the manifest b refers to; errNotManifest when
// b is not JSON.
func parseManifest(b []byte) (*manifestRefs, error) {
	type desc struct {
		Digest string `json:"digest"`
	}
	var raw struct {
		Config    *desc  `json:"config"`
		Layers    []desc `json:"layers"`
		Blobs     []desc `json:"blobs"`
		Manifests []desc `json:"manifests"`
		Subject   *desc  `json:"subject"`
		FSLayers  []struct {
			BlobSum string `json:"blobSum"`
		} `json:"fsLayers"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotManifest, err)
	}
	hexOf := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	m := &manifestRefs{}
	if raw.Config != nil {
		m.blobs = append(m.blobs, hexOf(raw.Config.Digest))
	}
	for _, l := range append(raw.Layers, raw.Blobs...) {
		m.blobs = append(m.blobs, hexOf(l.Digest))
	}
	for _, l := range raw.FSLayers {
		m.blobs = append(m.blobs, hexOf(l.BlobSum))
	}
	for _, c := range raw.Manifests {
		m.manifests = append(m.manifests, hexOf(c.Digest))
	}
	if raw.Subject != nil {
		m.subject = hexOf(raw.Subject.Digest)
	}
	return m, nil
}

// markManifest marks manifest hex, the blobs it names and, for an index,
// its children; an error when a manifest that must be read cannot be.
func (g *collector) markManifest(hex string, sure certainty) error {
	if !isHex(hex) || g.marked[hex] {
		return nil
	}
	m, err := g.parse(hex, sure)
	if err != nil {
		return err
	}
	g.marked[hex] = true
	if m == nil {
		return nil
	}
	for _, b := range m.blobs {
		g.marked[b] = true
	}
	for _, c := range m.manifests {
		if err := g.markManifest(c, isManifest); err != nil {
			return fmt.Errorf("child of index %s: %w", hex, err)
		}
	}
	return nil
}

// sweep deletes (or, dry, counts) what the mark left.
func (g *collector) sweep(ctx context.Context, dryRun bool) (GCStats, error) {
	stats := GCStats{DryRun: dryRun}
	remove := func(p string) error {
		if dryRun {
			return nil
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		return nil
	}
	recentLink := map[string]bool{}
	for _, r := range g.repos {
		for hex, at := range r.layerLinks {
			if at.After(g.cutoff) {
				recentLink[hex] = true
			}
		}
	}

	// Blobs.
	deleted := map[string]bool{}
	shards, err := os.ReadDir(filepath.Join(g.root, "blobs", "sha256"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return stats, err
	}
	for _, shard := range shards {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		ents, err := os.ReadDir(filepath.Join(g.root, "blobs", "sha256", shard.Name()))
		if err != nil {
			return stats, err
		}
		for _, ent := range ents {
			hex := ent.Name()
			if !isHex(hex) || g.marked[hex] {
				continue
			}
			fi, err := os.Stat(filepath.Join(g.blobPath(hex), "data"))
			if err != nil {
				continue // being written
			}
			if recentLink[hex] || g.touched[hex] || fi.ModTime().After(g.cutoff) {
				stats.KeptRecent++
				continue
			}
			if err := remove(g.blobPath(hex)); err != nil {
				return stats, err
			}
			deleted[hex] = true
			stats.BlobsDeleted++
			stats.BytesFreed += fi.Size()
		}
	}

	// Manifest revisions and layer links, per repository.
	for _, r := range g.repos {
		for hex, at := range r.revisions {
			if g.marked[hex] {
				continue
			}
			if at.After(g.cutoff) || g.touched[hex] {
				stats.KeptRecent++
				continue
			}
			if err := remove(filepath.Join(r.dir, "_manifests", "revisions", "sha256", hex)); err != nil {
				return stats, err
			}
			if err := g.removeTagHistory(r.dir, hex, remove); err != nil {
				return stats, err
			}
			stats.ManifestsDeleted++
		}
		for hex, at := range r.layerLinks {
			if g.marked[hex] {
				continue
			}
			if at.After(g.cutoff) {
				stats.KeptRecent++
				continue
			}
			if !deleted[hex] {
				continue // the blob stays for another reason
			}
			if err := remove(filepath.Join(r.dir, "_layers", "sha256", hex)); err != nil {
				return stats, err
			}
			stats.LayerLinksDeleted++
		}
	}
	return stats, nil
}

// removeTagHistory removes the entries of tags that once pointed at
// manifest hex.
func (g *collector) removeTagHistory(repoDir, hex string, remove func(string) error) error {
	tags, err := os.ReadDir(filepath.Join(repoDir, "_manifests", "tags"))
	if err != nil {
		return nil
	}
	for _, t := range tags {
		p := filepath.Join(repoDir, "_manifests", "tags", t.Name(), "index", "sha256", hex)
		if _, err := os.Stat(p); err == nil {
			if err := remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// touchingWriter notes, once the response says the request succeeded, the
// digests the request named and the manifest digest the response names.
// It is written to while the request holds the write gate, so a
// collection that takes the gate afterwards sees the digests.
type touchingWriter struct {
	http.ResponseWriter
	e       *Embedded
	digests []string
	wrote   bool
}

func (t *touchingWriter) WriteHeader(code int) {
	if !t.wrote {
		t.wrote = true
		// 304: a client's copy of the manifest is current, so it exists.
		if code < 300 || code == http.StatusNotModified {
			for _, d := range t.digests {
				t.e.touch(d)
			}
			if d := t.Header().Get("Docker-Content-Digest"); d != "" {
				t.e.touch(d)
			}
		}
	}
	t.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (t *touchingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *touchingWriter) Write(p []byte) (int, error) {
	if !t.wrote {
		t.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(p)
}

// Flush passes a flush on (http.Flusher), as distribution's writer
// expects of the one it wraps.
func (t *touchingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		if !t.wrote {
			t.WriteHeader(http.StatusOK)
		}
		f.Flush()
	}
}

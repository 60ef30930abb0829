// Package registry holds cccp's embedded OCI registry and the image
// operations cccp performs on any registry.
//
// The embedded registry is CNCF distribution v3 used as a library: its
// http.Handler stores images with the filesystem driver under a data folder
// and is wrapped by an access check. Reads (GET, HEAD) are anonymous; every
// other method needs cccp's own push credentials (HTTP basic), generated on
// first start and kept in a 0600 file next to the storage, so they survive
// restarts. The credentials never reach a log line or an error.
//
// Image operations (Client) go through go-containerregistry: a retag within
// one repository is a manifest copy, a copy to another repository of the
// same registry mounts the blobs, and a copy to another registry streams
// only the blobs the target lacks.
//
// Data folder layout (Config.Dir):
//
//	credentials        push user and password, JSON, mode 0600
//	storage/docker/... distribution's filesystem storage
//
// # Garbage collection
//
// distribution's own collector (storage.MarkAndSweep) is an offline tool:
// it assumes nothing is pushed while it runs, so a manifest pushed during
// its mark may refer to a blob its sweep then deletes. cccp collects while
// it serves, so GC works in two phases over the filesystem layout:
//
//  1. Mark, with pushes going on. Every tag's current manifest is a root,
//     and so is every manifest revision linked less than GCKeepRecent ago
//     (a push by digest whose tag comes later, such as the children of an
//     index). From the roots, manifests are read and the config, layers,
//     child manifests and subject they name are marked. An untagged
//     manifest whose subject is marked (a referrer) is marked too.
//  2. Re-mark and sweep, with a short pause. GC takes the registry's gate
//     exclusively: write requests, and reads that ask for a blob or a
//     manifest by digest (how a client decides to skip an upload), wait
//     until it ends; nothing fails (blob downloads are not held). Under the gate GC marks again, which
//     re-reads every tag's link but parses only manifests phase 1 did not
//     see, then
//     deletes what is still unmarked and old: manifest revisions (and their
//     tag history entries), blobs, and the layer links of deleted blobs.
//
// What phase 2 keeps although unmarked, so that a push in progress never
// loses a blob it counts on:
//   - a blob whose data, or any repository's link to it, was written less
//     than GCKeepRecent ago (layers sent before their manifest, a blob
//     mounted from another repository);
//   - a blob or manifest that a successful request with the push
//     credentials named by digest, or a manifest such a request resolved
//     from a tag, less than GCKeepRecent ago (the registry remembers them
//     in memory, and forgets older ones as it goes, so the memory holds
//     about the digests of the last GCKeepRecent), and everything such a
//     manifest refers to: a pusher that found a layer present and skipped
//     its upload pushes its manifest within that time, and one that looked
//     an image up may tag it again (a retag after the tag moved).
//     Anonymous reads count for nothing here: only a client that can push
//     can act on what it found, and a stranger could otherwise keep any
//     unreferenced blob alive forever by asking for it every GCKeepRecent.
//
// GC deletes nothing when a manifest it has to read to know what is in use
// cannot be read or parsed: a tag's link without a digest, a tagged or
// listed manifest whose data is missing, larger than 4 MiB or not JSON, a
// disk error on any of them or on a recently linked or referring manifest.
// Every blob only that manifest names would otherwise look unused. The
// error (ErrUnreadableManifest) names the file and why; GCAborts counts
// such collections and each is logged.
//
// Uploads in progress live in _uploads until committed and are never
// swept. The pause lasts as long as the second mark and the deletions
// (BenchmarkGCPause: about 0.1 s for 1,000 tags on two busy cores). A blob
// download is not held: a blob nothing refers to may vanish under one,
// which only a client reading garbage notices. A client that waits longer than GCKeepRecent between
// sending a layer and its manifest may find the layer gone and must push
// it again, as with any registry that collects garbage.
package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/sirupsen/logrus"
	// The filesystem storage driver registers itself with distribution's
	// driver factory when its package is loaded; that is the library's
	// mechanism, cccp adds no init() of its own.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Realm is the HTTP basic realm the embedded registry announces.
const Realm = "cccp"

// Config configures the embedded registry.
type Config struct {
	// Dir is the data folder; required. Storage goes to Dir/storage, the
	// push credentials to Dir/credentials.
	Dir string
	// Addr is the address to listen on when Listener is nil; default
	// "127.0.0.1:0" (a free loopback port).
	Addr string
	// Listener, when set, is served instead of opening Addr. Close closes it.
	Listener net.Listener
	// Logger receives distribution's log lines (its info level as debug);
	// nil discards them.
	Logger *slog.Logger
	// PushUser is the user name written into a new credentials file;
	// default "cccp". An existing file keeps its own user.
	PushUser string
	// GCKeepRecent protects blobs and layer links written less than this
	// long before a garbage collection, so a push that has sent its layers
	// but not yet its manifest keeps them; default 15 minutes.
	GCKeepRecent time.Duration
}

// Embedded is a running embedded registry.
type Embedded struct {
	cfg    Config
	log    *slog.Logger
	dlog   *logrus.Entry
	creds  Credentials
	app    *handlers.App
	srv    *http.Server
	ln     net.Listener
	host   string
	served chan error

	// writes is held shared by every write request, and by every read of a
	// blob or manifest by digest, and exclusively by GC's sweep, so a
	// collection sees no manifest or blob arrive half-way (gc.go).
	writes sync.RWMutex
	gcMu   sync.Mutex // one GC at a time
	// gcAborts counts collections that ended with an error.
	gcAborts atomic.Int64
	// gcRead, when set, replaces readSmall for GC's reads of manifests
	// (a test's failing disk).
	gcRead func(path string, limit int64) ([]byte, error)
	// touched holds the digests requests named recently, by hex digest.
	touchMu sync.Mutex
	touched map[string]time.Time
	// touchPruneAt is the size at which touch next drops old entries.
	touchPruneAt int
	now          func() time.Time // time.Now; a test's clock

	// fresh holds connections that have not sent a request yet; Close
	// ends them at once (net/http would wait 5 s for each).
	freshMu sync.Mutex
	fresh   map[net.Conn]bool

	closeOnce sync.Once
	closeErr  error
}

// Start opens (or creates) the registry in cfg.Dir and serves it until
// Close. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("start registry: data folder is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	if cfg.PushUser == "" {
		cfg.PushUser = "cccp"
	}
	if cfg.GCKeepRecent <= 0 {
		cfg.GCKeepRecent = 15 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds, err := loadOrCreateCredentials(filepath.Join(cfg.Dir, "credentials"), cfg.PushUser, log)
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}

	e := &Embedded{
		cfg: cfg, log: log, dlog: distributionLogger(log), creds: creds,
		served: make(chan error, 1), fresh: map[net.Conn]bool{},
		touched: map[string]time.Time{}, now: time.Now,
	}
	e.app, err = newApp(withLogger(context.Background(), e.dlog), e.storageDir())
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}

	e.ln = cfg.Listener
	if e.ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var lc net.ListenConfig
		if e.ln, err = lc.Listen(ctx, "tcp", addr); err != nil {
			_ = e.app.Shutdown()
			return nil, fmt.Errorf("start registry: %w", err)
		}
	}
	e.host = hostFor(e.ln.Addr())
	e.srv = &http.Server{
		Handler:           e.handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnState:         e.trackConn,
	}
	go func() { e.served <- e.srv.Serve(e.ln) }()
	log.Info("registry started", "host", e.host, "dir", cfg.Dir)
	return e, nil
}

func (e *Embedded) storageDir() string { return filepath.Join(e.cfg.Dir, "storage") }

// newApp builds distribution's application over the filesystem driver.
// NewApp panics on a bad configuration; the panic becomes an error.
func newApp(ctx context.Context, root string) (app *handlers.App, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("upload secret: %w", err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
			"redirect":   configuration.Parameters{"disable": true},
			// distribution's upload purger logs through logrus' global
			// logger; abandoned uploads are few here, so it stays off.
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
			},
		},
	}
	cfg.HTTP.Secret = string(secret)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("distribution: %v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// hostFor names a listener address the way clients reach it: an
// unspecified IP becomes loopback.
func hostFor(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// Host returns the registry's address as "127.0.0.1:PORT", the registry
// part of image references.
func (e *Embedded) Host() string { return e.host }

// PushCredentials returns the user and password that may write.
func (e *Embedded) PushCredentials() (user, pass string) {
	return e.creds.User, e.creds.Password
}

// Close stops serving, waiting for requests in flight until ctx ends (then
// cutting them off).
func (e *Embedded) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		done := make(chan error, 1)
		go func() { done <- e.srv.Shutdown(ctx) }()
		var err error
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			e.closeFresh()
			select {
			case err = <-done:
				break wait
			case <-tick.C:
			}
		}
		if err != nil {
			// ctx ended with requests still running: cut them off.
			_ = e.srv.Close()
		}
		if serr := <-e.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		err = errors.Join(err, e.app.Shutdown())
		if err != nil {
			e.closeErr = fmt.Errorf("close registry: %w", err)
		}
	})
	return e.closeErr
}

func (e *Embedded) trackConn(c net.Conn, s http.ConnState) {
	e.freshMu.Lock()
	defer e.freshMu.Unlock()
	if s == http.StateNew {
		e.fresh[c] = true
	} else {
		delete(e.fresh, c)
	}
}

func (e *Embedded) closeFresh() {
	e.freshMu.Lock()
	defer e.freshMu.Unlock()
	for c := range e.fresh {
		_ = c.Close()
		delete(e.fresh, c)
	}
}

// handler wraps distribution's handler with the access check and the write
// gate used by GC.
func (e *Embedded) handler() http.Handler {
	user, pass := []byte(e.creds.User), []byte(e.creds.Password)
	authorized := func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		// Both comparisons always run, so timing tells nothing about which
		// half was wrong.
		uOK := subtle.ConstantTimeCompare([]byte(u), user)
		pOK := subtle.ConstantTimeCompare([]byte(p), pass)
		return ok && uOK&pOK == 1
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(withLogger(r.Context(), e.dlog))
		digests, byDigest := digestsOf(r)
		// GC remembers the digests of requests with the push credentials
		// that succeed, and the digest a manifest asked for by tag
		// resolved to (gc.go): a pusher's HEAD of a blob it then skips.
		// An anonymous read touches nothing, or any stranger could keep
		// an unreferenced blob alive forever by asking for it.
		if authorized(r) {
			w = &touchingWriter{ResponseWriter: w, e: e, digests: digests}
		}
		switch {
		case isBase(r) && !authorized(r):
			// The version check is where clients learn the auth scheme;
			// a challenge here makes docker, skopeo and buildah send
			// credentials later (reads pass without them anyway).
			unauthorized(w)
		case byDigest && (r.Method == http.MethodHead || r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")):
			// Whether a blob or manifest exists decides whether a client
			// uploads it: the answer must not change between GC's
			// decision and its deletion. (A blob download is not gated: a
			// long one would hold GC, and every push queued behind it.)
			e.writes.RLock()
			defer e.writes.RUnlock()
			e.app.ServeHTTP(w, r)
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			e.app.ServeHTTP(w, r)
		case !authorized(r):
			unauthorized(w)
		default:
			e.writes.RLock()
			defer e.writes.RUnlock()
			e.app.ServeHTTP(w, r)
		}
	})
}

func isBase(r *http.Request) bool { return r.URL.Path == "/v2/" || r.URL.Path == "/v2" }

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}` + "\n"))
}

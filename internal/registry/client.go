package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrNotFound is returned when a manifest or repository does not exist.
var ErrNotFound = errors.New("not found")

// ClientConfig configures a Client.
type ClientConfig struct {
	// Insecure lists registries (host or host:port) spoken to over plain
	// HTTP. Loopback registries always may be.
	Insecure []string
	// Credentials gives explicit credentials per registry host[:port], for
	// instance the embedded registry's push credentials; they win over the
	// auth files.
	Credentials map[string]Credentials
	// AuthFiles are the container auth files to read, in order; nil means
	// DefaultAuthFiles().
	AuthFiles []string
	// Transport carries the requests; nil means go-containerregistry's
	// default transport.
	Transport http.RoundTripper
	// Logger receives one debug line per operation; nil discards.
	Logger *slog.Logger
}

// Client performs image operations on registries.
type Client struct {
	insecure []string
	keys     keychain
	rt       http.RoundTripper
	log      *slog.Logger
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) *Client {
	files := cfg.AuthFiles
	if files == nil {
		files = DefaultAuthFiles()
	}
	explicit := make(map[string]Credentials, len(cfg.Credentials))
	for host, c := range cfg.Credentials {
		explicit[normalHost(host)] = c
	}
	rt := cfg.Transport
	if rt == nil {
		rt = remote.DefaultTransport
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{insecure: cfg.Insecure, keys: keychain{explicit: explicit, files: files}, rt: rt, log: log}
}

// options are the go-containerregistry options of every call. Pullers and
// pushers are made per call: a Pusher remembers which blobs it wrote, and
// a long-lived one would trust that memory after a garbage collection.
func (c *Client) options() []remote.Option {
	return []remote.Option{remote.WithAuthFromKeychain(c.keys), remote.WithTransport(c.rt), remote.WithUserAgent("cccp")}
}

func (c *Client) puller() (*remote.Puller, error) { return remote.NewPuller(c.options()...) }
func (c *Client) pusher() (*remote.Pusher, error) { return remote.NewPusher(c.options()...) }

// isInsecure reports whether host may be spoken to over plain HTTP.
func (c *Client) isInsecure(host string) bool {
	if IsLoopback(host) {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	return slices.Contains(c.insecure, host) || slices.Contains(c.insecure, h)
}

func (c *Client) nameOptions(s string) []name.Option {
	host, _, _ := strings.Cut(s, "/")
	if c.isInsecure(host) {
		return []name.Option{name.Insecure, name.StrictValidation}
	}
	return []name.Option{name.StrictValidation}
}

// parseRef parses an image reference; it must name its registry and a tag
// or digest explicitly.
func (c *Client) parseRef(s string) (name.Reference, error) {
	last := s[strings.LastIndex(s, "/")+1:]
	if !strings.Contains(s, "/") || !strings.ContainsAny(last, ":@") {
		return nil, fmt.Errorf("image reference %q: needs a :tag or @digest", s)
	}
	ref, err := name.ParseReference(s, c.nameOptions(s)...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}

func (c *Client) parseRepo(s string) (name.Repository, error) {
	repo, err := name.NewRepository(s, c.nameOptions(s)...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("repository %q: %w", s, err)
	}
	return repo, nil
}

// wrap adds what was being done to err and turns a 404 into ErrNotFound.
func wrap(op, what string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%s %s: %w: %w", op, what, ErrNotFound, err)
	}
	return fmt.Errorf("%s %s: %w", op, what, err)
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// Digest returns the manifest digest ("sha256:...") that ref names now.
func (c *Client) Digest(ctx context.Context, ref string) (string, error) {
	r, err := c.parseRef(ref)
	if err != nil {
		return "", err
	}
	p, err := c.puller()
	if err != nil {
		return "", wrap("digest", ref, err)
	}
	desc, err := p.Head(ctx, r)
	if err != nil {
		return "", wrap("digest", ref, err)
	}
	return desc.Digest.String(), nil
}

// Exists reports whether ref names a manifest.
func (c *Client) Exists(ctx context.Context, ref string) (bool, error) {
	_, err := c.Digest(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// Tag points the tag dst at the manifest src names (src may be
// "repo@sha256:..."). Within one repository this is a manifest copy only:
// the manifest is read and put under the new tag, no blob moves. Into
// another repository or registry it is a Copy.
func (c *Client) Tag(ctx context.Context, src, dst string) error {
	s, err := c.parseRef(src)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	d, err := c.parseRef(dst)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	if _, ok := d.(name.Tag); !ok {
		return fmt.Errorf("tag %s as %s: target must be a tag, not a digest", src, dst)
	}
	if s.Context().String() != d.Context().String() {
		return c.copy(ctx, s, d)
	}
	p, err := c.puller()
	if err != nil {
		return wrap("tag", src, err)
	}
	desc, err := p.Get(ctx, s)
	if err != nil {
		return wrap("tag: read", src, err)
	}
	w, err := c.pusher()
	if err != nil {
		return wrap("tag", dst, err)
	}
	if err := w.Put(ctx, d, desc); err != nil {
		return wrap("tag: write", dst, err)
	}
	c.log.Debug("tagged", "src", src, "dst", dst, "digest", desc.Digest.String())
	return nil
}

// Copy copies the image or index src names to dst (a tag, or a digest
// that must equal src's), keeping its digest. Blobs dst already has are
// skipped; within one registry the rest are mounted from src's
// repository, across registries they are streamed from src to dst.
func (c *Client) Copy(ctx context.Context, src, dst string) error {
	s, err := c.parseRef(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	d, err := c.parseRef(dst)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return c.copy(ctx, s, d)
}

func (c *Client) copy(ctx context.Context, s, d name.Reference) error {
	p, err := c.puller()
	if err != nil {
		return wrap("copy", s.String(), err)
	}
	desc, err := p.Get(ctx, s)
	if err != nil {
		return wrap("copy: read", s.String(), err)
	}
	if dg, ok := d.(name.Digest); ok && dg.DigestStr() != desc.Digest.String() {
		return fmt.Errorf("copy %s to %s: source digest is %s", s, d, desc.Digest)
	}
	w, err := c.pusher()
	if err != nil {
		return wrap("copy", d.String(), err)
	}
	if err := w.Push(ctx, d, desc); err != nil {
		return wrap("copy: write", d.String(), err)
	}
	c.log.Debug("copied", "src", s.String(), "dst", d.String(), "digest", desc.Digest.String())
	return nil
}

// Tags lists the tags of repo ("host/ns/name"); a repository that does not
// exist has none.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	r, err := c.parseRepo(repo)
	if err != nil {
		return nil, err
	}
	p, err := c.puller()
	if err != nil {
		return nil, wrap("list tags of", repo, err)
	}
	tags, err := p.List(ctx, r)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("list tags of", repo, err)
	}
	return tags, nil
}

// Delete removes ref: a tag ref removes that tag only (where the registry
// supports it, as the embedded one does), a digest ref removes the
// manifest and with it every tag pointing at it.
func (c *Client) Delete(ctx context.Context, ref string) error {
	r, err := c.parseRef(ref)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	w, err := c.pusher()
	if err != nil {
		return wrap("delete", ref, err)
	}
	if err := w.Delete(ctx, r); err != nil {
		return wrap("delete", ref, err)
	}
	return nil
}

// Reference parses an image reference the way every Client call does:
// it must name its registry and a :tag or @digest, and loopback or
// configured insecure registries are spoken to over plain HTTP. Packages
// that write their own artifacts (signatures, SBOMs) use it with
// RemoteOptions so they reach registries exactly as the Client does.
func (c *Client) Reference(s string) (name.Reference, error) { return c.parseRef(s) }

// RemoteOptions are the go-containerregistry options of the Client's own
// calls (credentials, transport, user agent) with ctx.
func (c *Client) RemoteOptions(ctx context.Context) []remote.Option {
	return append(c.options(), remote.WithContext(ctx))
}

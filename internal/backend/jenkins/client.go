package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/textcut"
)

// client speaks Jenkins' remote access API: basic authentication with a
// user's API token, the CSRF crumb when Jenkins issues one, retries with
// backoff while Jenkins is away. It never puts the token in a URL, an
// error or a log line.
type client struct {
	base       *url.URL // ends with "/"
	user       string
	token      string
	http       *http.Client
	mask       *redact.Masker
	log        *slog.Logger
	timeout    time.Duration // per request
	backoff    time.Duration // first retry delay; doubles up to maxBackoff
	maxBackoff time.Duration
	outage     time.Duration // how long transient failures are retried

	mu    sync.Mutex
	crumb *crumb // nil until fetched
}

type crumb struct {
	field, value string // both empty: Jenkins has CSRF protection off
}

// response is a read response of a 2xx or 3xx status.
type response struct {
	status int
	header http.Header
	body   []byte
}

// StatusError is a response Jenkins answered with an error status.
type StatusError struct {
	Method string
	URL    string // without credentials
	Code   int
	Text   string // the start of a plain-text body, if any
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// errOutage wraps the last error once Jenkins stayed unreachable for the
// configured outage.
var errOutage = errors.New("jenkins stayed unreachable")

// Body limits: JSON answers, one progressiveText chunk, the results file.
const (
	maxJSON  = 4 << 20
	maxChunk = 64 << 20
)

// request is one call.
type request struct {
	method string
	path   string     // relative to the base URL, unescaped segments joined with "/"
	query  url.Values // may be nil
	form   url.Values // POST body, may be nil
	limit  int64      // body limit; maxJSON when 0
}

// do sends r, retrying transient failures (connection refused or reset,
// a timed-out attempt, 502, 503, 504) with backoff for up to c.outage. A
// POST is retried only when it cannot have reached Jenkins (the connection
// was refused) or a proxy or a starting Jenkins turned it away (502-504),
// so a build is never queued twice. A POST refused for its crumb (403)
// fetches a new crumb once and is sent again.
func (c *client) do(ctx context.Context, r request) (*response, error) {
	var (
		first     time.Time
		delay     = c.backoff
		recrumbed bool
	)
	for {
		resp, err := c.once(ctx, r)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var se *StatusError
		if r.method == http.MethodPost && errors.As(err, &se) && se.Code == http.StatusForbidden && !recrumbed && c.usesCrumb() {
			recrumbed = true
			c.forgetCrumb()
			continue
		}
		if !c.transient(r.method, err) {
			return nil, err
		}
		if first.IsZero() {
			first = time.Now()
		}
		if time.Since(first) >= c.outage {
			return nil, fmt.Errorf("%w for %s: %w", errOutage, c.outage, err)
		}
		c.log.Warn("jenkins: transient failure, retrying", "method", r.method, "path", r.path, "in", delay, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(2*delay, c.maxBackoff)
	}
}

// transient tells whether err is worth retrying for method.
func (c *client) transient(method string, err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		switch se.Code {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if method == http.MethodPost {
		return false // it may have reached Jenkins
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// once sends r one time.
func (c *client) once(ctx context.Context, r request) (*response, error) {
	u := c.url(r.path, r.query)
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	}
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("jenkins request %s: %w", redact.URL(u), err)
	}
	req.SetBasicAuth(c.user, c.token)
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.method == http.MethodPost {
		cr, err := c.getCrumb(ctx)
		if err != nil {
			return nil, err
		}
		if cr.field != "" {
			req.Header.Set(cr.field, cr.value)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.clean(err)
	}
	defer resp.Body.Close()
	limit := r.limit
	if limit == 0 {
		limit = maxJSON
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", r.method, redact.URL(u), c.clean(err))
	}
	if resp.StatusCode >= 400 {
		return nil, &StatusError{Method: r.method, URL: redact.URL(u), Code: resp.StatusCode, Text: c.errorText(resp.Header, data)}
	}
	if resp.StatusCode >= 300 && r.method == http.MethodGet {
		// Nothing cccp reads redirects; a proxy that does (http to https,
		// a login page) means the configured URL is not Jenkins' root.
		return nil, fmt.Errorf("GET %s: redirected (%d) to %s; is url Jenkins' root URL?",
			redact.URL(u), resp.StatusCode, redact.URL(resp.Header.Get("Location")))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", r.method, redact.URL(u), limit)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// errorText is the first line of a plain-text error body (Jenkins'
// HttpResponses.errorWithoutStack), masked; HTML error pages say nothing
// a log line needs.
func (c *client) errorText(h http.Header, body []byte) string {
	if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return c.mask.String(textcut.Bytes(redact.StripANSI(line), 200))
}

// clean masks the token in an error from the transport, should one ever
// carry it.
func (c *client) clean(err error) error {
	if s := err.Error(); c.mask.String(s) != s {
		return errors.New(c.mask.String(s))
	}
	return err
}

func (c *client) url(path string, q url.Values) string {
	u := c.base.JoinPath(strings.Split(path, "/")...)
	if strings.HasSuffix(path, "/") {
		u.Path += "/"
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// getCrumb returns the crumb for POSTs, asking Jenkins once. A 404 from
// /crumbIssuer/api/json means CSRF protection is off.
func (c *client) getCrumb(ctx context.Context) (crumb, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crumb != nil {
		return *c.crumb, nil
	}
	r, err := c.do(ctx, request{method: http.MethodGet, path: "crumbIssuer/api/json"})
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		c.crumb = &crumb{}
		return *c.crumb, nil
	case err != nil:
		return crumb{}, fmt.Errorf("jenkins CSRF crumb: %w", err)
	}
	var v struct {
		Crumb             string `json:"crumb"`
		CrumbRequestField string `json:"crumbRequestField"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		return crumb{}, fmt.Errorf("jenkins CSRF crumb: %w", err)
	}
	if v.Crumb == "" || v.CrumbRequestField == "" {
		return crumb{}, errors.New("jenkins CSRF crumb: the crumb issuer answered without a crumb")
	}
	c.crumb = &crumb{field: v.CrumbRequestField, value: v.Crumb}
	return *c.crumb, nil
}

func (c *client) usesCrumb() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crumb != nil && c.crumb.field != ""
}

func (c *client) forgetCrumb() {
	c.mu.Lock()
	c.crumb = nil
	c.mu.Unlock()
}

// getJSON GETs path and decodes its JSON answer into v.
func (c *client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	r, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(bytes.TrimSpace(r.body), v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

func isStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Package gitlab is cccp's GitLab adapter: webhook verification and parsing
// (webhook.go), commit statuses (status.go), the one merge-request comment
// (comment.go), permission look-ups (permission.go), the merge-request
// look-up (pullrequest.go), the API client (client.go) and onboarding merge
// requests (onboard.go). bot/github and bot/gitea have the same files;
// bot/forgetest.Conformance checks all three alike.
package gitlab

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/retry"
	"github.com/cccp-project/cccp/bot/internal/whoami"
)

// CommentLimit is the size limit of a note body on GitLab (1,000,000
// characters; counted here in bytes, which is stricter).
const CommentLimit = 1_000_000

// Config configures a GitLab client.
type Config struct {
	// Token is a project, group or personal access token with the api scope.
	Token string
	// BaseURL is the instance: "" for https://gitlab.com, or
	// https://gitlab.example.com (the client adds /api/v4/ when missing).
	BaseURL string
	// HTTPClient is the base client; nil for a default with a 30 s timeout.
	HTTPClient *http.Client
}

// Client talks to one GitLab instance.
type Client struct {
	api  *gl.Client
	self whoami.Cache // the token's user, author of the bot's notes
}

// NewClient returns a Client. It makes no request.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Token == "" {
		return nil, errors.New("gitlab: token not set")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	opts := []gl.ClientOptionFunc{
		gl.WithHTTPClient(hc),
		// No in-process retries: a rate limit or an outage goes back to the
		// caller's outbox as an event.RetryableError.
		gl.WithoutRetries(),
	}
	if cfg.BaseURL != "" {
		if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
			return nil, fmt.Errorf("gitlab: base URL %q: want http(s)://host", cfg.BaseURL)
		}
		opts = append(opts, gl.WithBaseURL(cfg.BaseURL))
	}
	api, err := gl.NewClient(cfg.Token, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab client: %w", err)
	}
	return &Client{api: api}, nil
}

// Limit is GitLab's note size limit in bytes.
func (c *Client) Limit() int { return CommentLimit }

// apiError wraps err with op, turning 429 and 5xx answers into
// *event.RetryableError (Retry-After, else RateLimit-Reset, else 30 s).
func apiError(op string, err error) error {
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		if s := er.Response.StatusCode; s == http.StatusTooManyRequests || s >= 500 {
			return &event.RetryableError{Op: "gitlab " + op, After: retryAfter(er.Response.Header), Err: err}
		}
		if s := er.Response.StatusCode; s >= 400 && s < 500 {
			return &event.PermanentError{Op: "gitlab " + op, Status: s, Err: err}
		}
	}
	if errors.Is(err, gl.ErrNotFound) { // client-go answers every 404 with this sentinel
		return &event.PermanentError{Op: "gitlab " + op, Status: http.StatusNotFound, Err: err}
	}
	return fmt.Errorf("gitlab %s: %w", op, err)
}

func retryAfter(h http.Header) time.Duration {
	if h.Get("Retry-After") != "" {
		return retry.After(h, time.Now(), 30*time.Second)
	}
	if reset, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64); err == nil {
		if d := time.Until(time.Unix(reset, 0)); d > 0 {
			return d
		}
	}
	return 30 * time.Second
}

func isStatus(err error, code int) bool {
	if code == http.StatusNotFound && errors.Is(err, gl.ErrNotFound) {
		return true // client-go answers every 404 with this sentinel
	}
	var er *gl.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == code
}

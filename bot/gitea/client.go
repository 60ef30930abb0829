// Package gitea is cccp's Gitea and Forgejo adapter: webhook verification
// and parsing (webhook.go), commit statuses (status.go), the one
// pull-request comment (comment.go), permission look-ups (permission.go),
// the pull-request look-up (pullrequest.go), the API client (client.go) and
// onboarding pull requests (onboard.go). bot/github and bot/gitlab have the
// same files; bot/forgetest.Conformance checks all three alike.
package gitea

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/retry"
	"github.com/cccp-project/cccp/bot/internal/whoami"
)

// CommentLimit is the size cccp allows a comment. Gitea stores comments as
// LONGTEXT and documents no API limit; 65,535 bytes, as on GitHub, keeps
// the comment readable and the request small.
const CommentLimit = 65535

// Config configures a Gitea client.
type Config struct {
	// Token is an access token of the bot user (scopes: repository, issue).
	Token string
	// BaseURL is the instance root, e.g. https://gitea.example.com (the SDK
	// adds /api/v1/).
	BaseURL string
	// HTTPClient is the base client; nil for a default with a 30 s timeout.
	HTTPClient *http.Client
}

// Client talks to one Gitea or Forgejo instance.
type Client struct {
	url   string
	token string
	hc    *http.Client
	self  whoami.Cache // the token's user, author of the bot's comments
}

// NewClient returns a Client. It makes no request: the SDK's server-version
// probe is switched off.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Token == "" {
		return nil, errors.New("gitea: token not set")
	}
	if !strings.HasPrefix(cfg.BaseURL, "http://") && !strings.HasPrefix(cfg.BaseURL, "https://") {
		return nil, fmt.Errorf("gitea: base URL %q: want http(s)://host", cfg.BaseURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c := &Client{url: strings.TrimSuffix(cfg.BaseURL, "/"), token: cfg.Token, hc: hc}
	if _, err := c.api(context.Background()); err != nil {
		return nil, err
	}
	return c, nil
}

// api returns an SDK client bound to ctx. The SDK keeps one context per
// client, so each call gets its own (cheap: no request is made).
func (c *Client) api(ctx context.Context) (*sdk.Client, error) {
	api, err := sdk.NewClient(c.url, sdk.SetToken(c.token), sdk.SetHTTPClient(c.hc),
		sdk.SetGiteaVersion(""), sdk.SetContext(ctx), sdk.SetUserAgent("cccp"))
	if err != nil {
		return nil, fmt.Errorf("gitea client for %s: %w", c.url, err)
	}
	return api, nil
}

// Limit is the comment size limit in bytes.
func (c *Client) Limit() int { return CommentLimit }

func splitRepo(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("gitea: repository %q: want owner/name", repo)
	}
	return owner, name, nil
}

// apiError wraps err with op, turning 429 and 5xx answers into
// *event.RetryableError.
func apiError(op string, resp *sdk.Response, err error) error {
	if resp != nil && resp.Response != nil {
		if s := resp.StatusCode; s == http.StatusTooManyRequests || s >= 500 {
			after := retry.After(resp.Header, time.Now(), 30*time.Second)
			return &event.RetryableError{Op: "gitea " + op, After: after, Err: err}
		}
		if s := resp.StatusCode; s >= 400 && s < 500 {
			return &event.PermanentError{Op: "gitea " + op, Status: s, Err: err}
		}
		return fmt.Errorf("gitea %s: %d: %w", op, resp.StatusCode, err)
	}
	return fmt.Errorf("gitea %s: %w", op, err)
}

func statusIs(resp *sdk.Response, codes ...int) bool {
	if resp == nil || resp.Response == nil {
		return false
	}
	for _, c := range codes {
		if resp.StatusCode == c {
			return true
		}
	}
	return false
}

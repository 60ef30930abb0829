// Package github is cccp's GitHub adapter: webhook verification and parsing
// (webhook.go), check runs and commit statuses (status.go), the one
// pull-request comment (comment.go), permission look-ups (permission.go),
// the pull-request look-up (pullrequest.go), clients for a GitHub App or a
// token (client.go) and onboarding pull requests (onboard.go). bot/gitlab
// and bot/gitea have the same files; bot/forgetest.Conformance checks all
// three alike.
package github

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/gofri/go-github-ratelimit/v2/github_ratelimit"
	"github.com/gofri/go-github-ratelimit/v2/github_ratelimit/github_secondary_ratelimit"
	gh "github.com/google/go-github/v92/github"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/internal/retry"
	"github.com/cccp-project/cccp/bot/internal/whoami"
)

// CommentLimit is the size limit of an issue comment body on GitHub.
const CommentLimit = 65535

// maxSecondarySleep is the longest a request sleeps in-process on a
// secondary rate limit; beyond it the error goes back to the caller's outbox.
const maxSecondarySleep = time.Minute

// AppConfig configures a GitHub App.
type AppConfig struct {
	AppID         int64
	PrivateKeyPEM []byte
	// BaseURL is the REST API root: "" for https://api.github.com/, or
	// https://ghe.example.com/api/v3/ for GitHub Enterprise Server.
	BaseURL string
	// HTTPClient is the base client (timeouts, proxies); nil for a default
	// client with a 30 s timeout.
	HTTPClient *http.Client
}

// TokenConfig configures a client authenticated with a personal or
// fine-grained access token. Reports are commit statuses.
type TokenConfig struct {
	Token      string
	BaseURL    string // as in AppConfig
	HTTPClient *http.Client
}

// App is a GitHub App. It hands out one Client per installation, each with
// its own installation token, refreshed by ghinstallation.
type App struct {
	appID   int64
	baseURL string
	apps    *ghinstallation.AppsTransport
	base    *http.Client
	appAPI  *gh.Client // authenticated as the App (JWT)

	login whoami.Cache // the App's bot login, slug + "[bot]"

	mu      sync.Mutex
	clients map[int64]*Client // by installation ID
	byRepo  map[string]int64  // installation ID by repository full name
}

// NewAppClient returns an App. The private key is parsed now, so a bad key
// fails at start-up.
func NewAppClient(cfg AppConfig) (*App, error) {
	if cfg.AppID == 0 {
		return nil, errors.New("github app: app ID not set")
	}
	base := baseClient(cfg.HTTPClient)
	apps, err := ghinstallation.NewAppsTransport(base.Transport, cfg.AppID, cfg.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github app %d: private key: %w", cfg.AppID, err)
	}
	apiURL, err := apiBase(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	apps.BaseURL = strings.TrimSuffix(apiURL, "/")
	appAPI, err := newGitHub(&http.Client{Transport: apps, Timeout: base.Timeout}, apiURL)
	if err != nil {
		return nil, err
	}
	return &App{
		appID: cfg.AppID, baseURL: apiURL, apps: apps, base: base, appAPI: appAPI,
		clients: map[int64]*Client{}, byRepo: map[string]int64{},
	}, nil
}

// Installation returns the client acting as installation id. Clients are
// cached: each keeps its token and its check-run IDs.
func (a *App) Installation(id int64) (*Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[id]; ok {
		return c, nil
	}
	tr := ghinstallation.NewFromAppsTransport(a.apps, id)
	api, err := newGitHub(&http.Client{Transport: tr, Timeout: a.base.Timeout}, a.baseURL)
	if err != nil {
		return nil, err
	}
	c := newClient(api, true)
	c.whoami = a.botLogin // an installation token cannot ask GET /user
	a.clients[id] = c
	return c, nil
}

// ForRepo returns the installation client for repo ("owner/name"), finding
// the installation through the API the first time.
func (a *App) ForRepo(ctx context.Context, repo string) (*Client, error) {
	a.mu.Lock()
	id, ok := a.byRepo[repo]
	a.mu.Unlock()
	if !ok {
		owner, name, err := splitRepo(repo)
		if err != nil {
			return nil, err
		}
		inst, _, err := a.appAPI.Apps.GetRepositoryInstallation(ctx, owner, name)
		if err != nil {
			return nil, apiError("find installation of "+repo, err)
		}
		id = inst.GetID()
		a.mu.Lock()
		a.byRepo[repo] = id
		a.mu.Unlock()
	}
	return a.Installation(id)
}

// SetStatus reports st on repo through the repository's installation.
func (a *App) SetStatus(ctx context.Context, repo string, st event.Status) error {
	c, err := a.ForRepo(ctx, repo)
	if err != nil {
		return err
	}
	return c.SetStatus(ctx, repo, st)
}

// UpsertComment writes the bot's comment through the repository's installation.
func (a *App) UpsertComment(ctx context.Context, repo string, number int, marker, body string) (int64, error) {
	c, err := a.ForRepo(ctx, repo)
	if err != nil {
		return 0, err
	}
	return c.UpsertComment(ctx, repo, number, marker, body)
}

// CanWrite looks up user's permission through the repository's installation.
func (a *App) CanWrite(ctx context.Context, repo, user string) (bool, error) {
	c, err := a.ForRepo(ctx, repo)
	if err != nil {
		return false, err
	}
	return c.CanWrite(ctx, repo, user)
}

// PullRequest fetches a pull request through the repository's installation.
func (a *App) PullRequest(ctx context.Context, repo string, number int) (*event.PullRequest, error) {
	c, err := a.ForRepo(ctx, repo)
	if err != nil {
		return nil, err
	}
	return c.PullRequest(ctx, repo, number)
}

// OpenPullRequest opens a pull request through the repository's installation.
func (a *App) OpenPullRequest(ctx context.Context, repo, base, branch, title, body string, files map[string][]byte) (string, error) {
	c, err := a.ForRepo(ctx, repo)
	if err != nil {
		return "", err
	}
	return c.OpenPullRequest(ctx, repo, base, branch, title, body, files)
}

// Limit is GitHub's comment size limit in bytes.
func (a *App) Limit() int { return CommentLimit }

// Client talks to the GitHub API as one installation or one token.
type Client struct {
	api       *gh.Client
	checkRuns bool // App installations report check runs; tokens commit statuses
	// whoami returns the login the client comments as.
	whoami func(context.Context) (string, error)
	self   whoami.Cache

	mu     sync.Mutex
	runIDs map[string]int64 // check-run ID by repo@sha@name
}

// NewTokenClient returns a Client authenticated with a token. It reports
// commit statuses (tokens cannot create check runs).
func NewTokenClient(cfg TokenConfig) (*Client, error) {
	if cfg.Token == "" {
		return nil, errors.New("github: token not set")
	}
	base := baseClient(cfg.HTTPClient)
	tok := cfg.Token
	inner := base.Transport
	hc := &http.Client{Timeout: base.Timeout, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok)
		return inner.RoundTrip(r)
	})}
	apiURL, err := apiBase(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	api, err := newGitHub(hc, apiURL)
	if err != nil {
		return nil, err
	}
	return newClient(api, false), nil
}

func newClient(api *gh.Client, checkRuns bool) *Client {
	c := &Client{api: api, checkRuns: checkRuns, runIDs: map[string]int64{}}
	c.whoami = c.tokenUser
	return c
}

// Limit is GitHub's comment size limit in bytes.
func (c *Client) Limit() int { return CommentLimit }

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// baseClient copies hc (or a default) and stacks the secondary rate limiter
// on its transport. Primary limits are not slept on: they surface as
// event.RetryableError.
func baseClient(hc *http.Client) *http.Client {
	out := &http.Client{Timeout: 30 * time.Second}
	var tr http.RoundTripper = http.DefaultTransport
	if hc != nil {
		out.Timeout = hc.Timeout
		if hc.Transport != nil {
			tr = hc.Transport
		}
	}
	out.Transport = github_ratelimit.NewSecondaryLimiter(tr,
		github_secondary_ratelimit.WithSingleSleepLimit(maxSecondarySleep, nil))
	return out
}

func apiBase(baseURL string) (string, error) {
	if baseURL == "" {
		return "https://api.github.com/", nil
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return "", fmt.Errorf("github: base URL %q: want http(s)://host/api/v3/", baseURL)
	}
	return strings.TrimSuffix(baseURL, "/") + "/", nil
}

func newGitHub(hc *http.Client, apiURL string) (*gh.Client, error) {
	api, err := gh.NewClient(gh.WithHTTPClient(hc), gh.WithUserAgent("cccp"))
	if err != nil {
		return nil, fmt.Errorf("github client: %w", err)
	}
	if apiURL != "https://api.github.com/" {
		// WithURLs keeps the path as given, unlike WithEnterpriseURLs,
		// which would append /api/v3/ to a base that already has it.
		api, err = gh.NewClient(gh.WithHTTPClient(hc), gh.WithUserAgent("cccp"), gh.WithURLs(&apiURL, &apiURL))
		if err != nil {
			return nil, fmt.Errorf("github client for %s: %w", apiURL, err)
		}
	}
	return api, nil
}

func splitRepo(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("github: repository %q: want owner/name", repo)
	}
	return owner, name, nil
}

// apiError wraps err with op, turning rate limits and Retry-After answers
// into *event.RetryableError so the caller's outbox reschedules.
func apiError(op string, err error) error {
	var rl *gh.RateLimitError
	if errors.As(err, &rl) {
		after := time.Until(rl.Rate.Reset.Time)
		if after < time.Second {
			after = time.Second
		}
		return &event.RetryableError{Op: "github " + op, After: after, Err: err}
	}
	var abuse *gh.AbuseRateLimitError
	if errors.As(err, &abuse) {
		after := time.Minute
		if abuse.RetryAfter != nil && *abuse.RetryAfter > 0 {
			after = *abuse.RetryAfter
		}
		return &event.RetryableError{Op: "github " + op, After: after, Err: err}
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		if s := er.Response.StatusCode; s == http.StatusTooManyRequests || s >= 500 {
			after := retry.After(er.Response.Header, time.Now(), 30*time.Second)
			return &event.RetryableError{Op: "github " + op, After: after, Err: err}
		}
		if s := er.Response.StatusCode; s >= 400 && s < 500 {
			return &event.PermanentError{Op: "github " + op, Status: s, Err: err}
		}
	}
	return fmt.Errorf("github %s: %w", op, err)
}

func isStatus(err error, code int) bool {
	var er *gh.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == code
}

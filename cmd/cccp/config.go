package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cccp-project/cccp/internal/evidence"
	"github.com/cccp-project/cccp/internal/pipeline"
	"github.com/cccp-project/cccp/internal/sbom"
)

// serveConfig is `cccp serve`'s configuration file. Secrets may be left out
// of the file and given in the environment instead (see applyEnv), which
// wins over the file.
type serveConfig struct {
	// Listen is the address of the web UI, API and webhook endpoints.
	Listen string `yaml:"listen"`
	// BaseURL is where people reach cccp; links in reports use it.
	BaseURL string `yaml:"base_url"`
	Data    string `yaml:"data"`
	// DebugListen serves Go's profiler there (flag --debug-listen only).
	DebugListen string `yaml:"-"`

	Index struct {
		// Path is the index on this machine (a checkout when GitURL is set).
		Path string `yaml:"path"`
		// GitURL, when set, is cloned into Path at start and pulled on
		// every push to Branch.
		GitURL string `yaml:"git_url"`
		Branch string `yaml:"branch"`
		// Forge and Repo name the index repository on its forge, so its
		// pull requests are linted and trial-built.
		Forge         string `yaml:"forge"`
		Repo          string `yaml:"repo"`
		AllowFileURLs bool   `yaml:"allow_file_urls"`
		// Removed is what happens to the images of an entry removed from
		// the index: keep (default) or delete-tags (serve_removed.go).
		Removed string `yaml:"removed"`
	} `yaml:"index"`

	Registry struct {
		// Address of the embedded registry (default 127.0.0.1:5115).
		Address string `yaml:"address"`
		// External, HOST[:PORT][/PREFIX], delivers there instead.
		External string   `yaml:"external"`
		Insecure []string `yaml:"insecure"`
		Aliases  []string `yaml:"aliases"`
	} `yaml:"registry"`

	Pipeline struct {
		Workers  int      `yaml:"workers"`
		Blocking []string `yaml:"blocking"`
		// Rescan is when delivered images are scanned again (config_rescan.go).
		Rescan rescanConfig `yaml:"rescan"`
		// LogMaxBytes caps one stage's log.
		LogMaxBytes int64 `yaml:"log_max_bytes"`
		// StageTimeout is each stage's deadline (default 30m).
		StageTimeout time.Duration `yaml:"stage_timeout"`
		// MaxResumes is how often a run is resumed after cccp stopped in
		// the middle of it before it fails instead (default 3).
		MaxResumes int `yaml:"max_resumes"`
		// Test chooses the test stage's backend (config_backend.go).
		Test testStageConfig `yaml:"test"`
		// Build chooses the build stage's backend (config_build.go).
		Build buildStageConfig `yaml:"build"`
		// Poll and BaseImages watch for changes without webhooks
		// (serve_watch.go).
		Poll       pollConfig       `yaml:"poll"`
		BaseImages baseImagesConfig `yaml:"base_images"`
	} `yaml:"pipeline"`

	// Signing configures the evidence of delivered images (internal/evidence).
	Signing struct {
		// KeyFile is an unencrypted ECDSA P-256 private key in PEM (in a
		// cluster, a mounted Secret; also $CCCP_SIGNING_KEY_FILE). Empty:
		// DATA/signing/cosign.key, generated at first start.
		KeyFile string `yaml:"key_file"`
		// Parents: enforce (default) fails a child whose parent of this
		// index is not signed by this key; warn logs and builds; off.
		Parents string `yaml:"parents"`
		// SBOMFormat: spdx-json (default) or cyclonedx-json.
		SBOMFormat string `yaml:"sbom_format"`
	} `yaml:"signing"`

	GitHub forgeConfig `yaml:"github"`
	GitLab forgeConfig `yaml:"gitlab"`
	Gitea  forgeConfig `yaml:"gitea"`

	Web struct {
		AdminTokens []string `yaml:"admin_tokens"`
		ReadTokens  []string `yaml:"read_tokens"`
		SessionKey  string   `yaml:"session_key"`
		// MetricsToken, when set, is the bearer token /metrics requires.
		MetricsToken string `yaml:"metrics_token"`
	} `yaml:"web"`

	// CommentLogLines is how many lines of a failed stage's log the PR
	// comment shows.
	CommentLogLines int `yaml:"comment_log_lines"`
	// Keep is how long delivery IDs (to refuse redeliveries), given-up
	// deliveries and the bot's memory of idle pull requests are kept
	// (default 168h).
	Keep time.Duration `yaml:"keep"`
	// BuildDrafts runs the pipelines of draft pull requests; by default a
	// draft waits until it is marked ready.
	BuildDrafts bool `yaml:"build_drafts"`
	// Secrets are more values to mask wherever cccp shows a log.
	Secrets []string `yaml:"secrets"`

	// Notify is email about finished builds (config_notify.go).
	Notify notifyConfig `yaml:"notify"`
	// Retention prunes old runs, logs and run tags (config_retention.go).
	Retention retentionConfig `yaml:"retention"`
}

type forgeConfig struct {
	WebhookSecret string `yaml:"webhook_secret"`
	// BaseURL of the forge's API (GitHub Enterprise, self-hosted GitLab or
	// Gitea). Default: the public service.
	BaseURL string `yaml:"base_url"`
	Token   string `yaml:"token"`
	// GitHub App mode: the app's ID and its private key (a PEM file).
	AppID          int64  `yaml:"app_id"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

func (f forgeConfig) enabled() bool { return f.WebhookSecret != "" || f.Token != "" || f.AppID != 0 }

// loadServeConfig reads path ("" for none), then the environment.
func loadServeConfig(path string, getenv func(string) string) (*serveConfig, error) {
	return loadServeConfigWith(path, getenv, nil)
}

// loadServeConfigWith is loadServeConfig with command-line overrides
// applied after the file and the environment, before validation.
func loadServeConfigWith(path string, getenv func(string) string, override func(*serveConfig)) (*serveConfig, error) {
	cfg := &serveConfig{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is fine
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	cfg.applyEnv(getenv)
	if override != nil {
		override(cfg)
	}
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", orDash(path), err)
	}
	return cfg, nil
}

// secretEnv are the environment variables that carry secrets; serve
// removes them from its environment once read.
var secretEnv = []string{"CCCP_GITHUB_WEBHOOK_SECRET", "CCCP_GITHUB_TOKEN", "CCCP_GITLAB_WEBHOOK_SECRET",
	"CCCP_GITLAB_TOKEN", "CCCP_GITEA_WEBHOOK_SECRET", "CCCP_GITEA_TOKEN", "CCCP_ADMIN_TOKENS", "CCCP_READ_TOKENS", "CCCP_SESSION_KEY",
	"CCCP_JENKINS_TOKEN", "CCCP_METRICS_TOKEN", "CCCP_SMTP_PASSWORD"}

// applyEnv takes secrets (and a few settings) from the environment.
func (c *serveConfig) applyEnv(getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.GitHub.WebhookSecret, "CCCP_GITHUB_WEBHOOK_SECRET")
	set(&c.GitHub.Token, "CCCP_GITHUB_TOKEN")
	set(&c.GitLab.WebhookSecret, "CCCP_GITLAB_WEBHOOK_SECRET")
	set(&c.GitLab.Token, "CCCP_GITLAB_TOKEN")
	set(&c.Gitea.WebhookSecret, "CCCP_GITEA_WEBHOOK_SECRET")
	set(&c.Gitea.Token, "CCCP_GITEA_TOKEN")
	set(&c.Web.SessionKey, "CCCP_SESSION_KEY")
	set(&c.Web.MetricsToken, "CCCP_METRICS_TOKEN")
	set(&c.Data, "CCCP_DATA")
	set(&c.Signing.KeyFile, "CCCP_SIGNING_KEY_FILE")
	if v := getenv("CCCP_ADMIN_TOKENS"); v != "" {
		c.Web.AdminTokens = splitList(v)
	}
	if v := getenv("CCCP_READ_TOKENS"); v != "" {
		c.Web.ReadTokens = splitList(v)
	}
	c.Pipeline.Test.applyEnv(getenv)
	c.Notify.applyEnv(getenv)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *serveConfig) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Listen
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Data == "" {
		c.Data = defaultDataDir()
	}
	if c.Index.Branch == "" {
		c.Index.Branch = "master"
	}
	if c.Registry.Address == "" {
		c.Registry.Address = DefaultRegistryAddr
	}
	if c.Pipeline.Workers <= 0 {
		c.Pipeline.Workers = 1
	}
	if c.Pipeline.StageTimeout <= 0 {
		c.Pipeline.StageTimeout = pipeline.DefaultStageTimeout
	}
	if c.Pipeline.MaxResumes <= 0 {
		c.Pipeline.MaxResumes = pipeline.DefaultMaxResumes
	}
	if c.Pipeline.LogMaxBytes <= 0 {
		c.Pipeline.LogMaxBytes = 16 << 20
	}
	if c.CommentLogLines <= 0 {
		c.CommentLogLines = 20
	}
	c.Pipeline.Test.defaults()
	c.Pipeline.Build.defaults()
	c.Notify.defaults()
}

func (c *serveConfig) validate() error {
	var errs []error
	if c.Index.Path == "" {
		errs = append(errs, errors.New("index.path is required"))
	}
	if err := c.Pipeline.Rescan.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := validRemovedPolicy(c.Index.Removed); err != nil {
		errs = append(errs, err)
	}
	for name, f := range map[string]forgeConfig{"github": c.GitHub, "gitlab": c.GitLab, "gitea": c.Gitea} {
		if !f.enabled() {
			continue
		}
		// A webhook endpoint never runs without its secret.
		if f.WebhookSecret == "" {
			errs = append(errs, fmt.Errorf("%s: webhook_secret (or CCCP_%s_WEBHOOK_SECRET) is required", name, strings.ToUpper(name)))
		}
		if name == "github" && f.AppID == 0 && f.Token == "" {
			errs = append(errs, errors.New("github: app_id with private_key_file, or a token, is required"))
		}
		if name == "github" && f.AppID != 0 && f.PrivateKeyFile == "" {
			errs = append(errs, errors.New("github: app_id needs private_key_file"))
		}
		if name != "github" && f.Token == "" {
			errs = append(errs, fmt.Errorf("%s: token (or CCCP_%s_TOKEN) is required", name, strings.ToUpper(name)))
		}
	}
	if c.Index.Repo != "" {
		switch c.Index.Forge {
		case "github", "gitlab", "gitea":
		default:
			errs = append(errs, fmt.Errorf("index.forge must be github, gitlab or gitea when index.repo is set, not %q", c.Index.Forge))
		}
	}
	if _, err := evidence.ParsePolicy(c.Signing.Parents); err != nil {
		errs = append(errs, fmt.Errorf("signing.parents: %w", err))
	}
	if _, err := sbom.ParseFormat(c.Signing.SBOMFormat); err != nil {
		errs = append(errs, fmt.Errorf("signing.sbom_format: %w", err))
	}
	if c.Web.SessionKey != "" && len(c.Web.SessionKey) < 32 {
		errs = append(errs, errors.New("web.session_key must be at least 32 bytes"))
	}
	if err := c.Pipeline.Test.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateBuild(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Notify.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateQueue()...)
	if err := c.validateWatch(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Retention.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// secrets are every configured secret value, for masking.
func (c *serveConfig) secrets() []string {
	s := append([]string(nil), c.Secrets...)
	for _, f := range []forgeConfig{c.GitHub, c.GitLab, c.Gitea} {
		s = append(s, f.WebhookSecret, f.Token)
	}
	s = append(s, c.Web.AdminTokens...)
	s = append(s, c.Web.ReadTokens...)
	return append(s, c.Web.SessionKey, c.Web.MetricsToken, c.Pipeline.Test.Jenkins.Token, c.Notify.SMTP.Password)
}

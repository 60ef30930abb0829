package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/cccp-project/cccp/internal/backend"
	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/redact"
)

// testStageConfig is `pipeline.test`: which backend runs the test stage,
// and its settings.
type testStageConfig struct {
	// Backend is local (podman on this machine, the default) or jenkins.
	Backend string        `yaml:"backend"`
	Jenkins jenkinsConfig `yaml:"jenkins"`
	// MaxConcurrent is how many tests run at once (config_queue.go).
	MaxConcurrent int `yaml:"max_concurrent"`
}

// jenkinsConfig is `pipeline.test.jenkins`, read only with backend jenkins.
type jenkinsConfig struct {
	URL  string `yaml:"url"`
	User string `yaml:"user"`
	// Token is the user's API token; CCCP_JENKINS_TOKEN wins.
	Token string `yaml:"token"`
	// Job is the job's full name (folder/name for a job in a folder).
	Job string `yaml:"job"`
	// Poll is how often a queued or running build is asked about.
	Poll time.Duration `yaml:"poll"`
	// CAFile is a PEM bundle to trust for Jenkins' certificate.
	CAFile string `yaml:"ca_file"`
}

// Test backends.
const (
	backendLocal   = "local"
	backendJenkins = jenkins.Name
)

// minJenkinsPoll keeps cccp a well-behaved client of a shared Jenkins.
const minJenkinsPoll = time.Second

func (t *testStageConfig) applyEnv(getenv func(string) string) {
	if v := getenv("CCCP_JENKINS_TOKEN"); v != "" {
		t.Jenkins.Token = v
	}
}

func (t *testStageConfig) defaults() {
	if t.Backend == "" {
		t.Backend = backendLocal
	}
	if t.Backend == backendJenkins && t.Jenkins.Poll == 0 {
		t.Jenkins.Poll = 5 * time.Second
	}
}

func (t *testStageConfig) validate() error {
	switch t.Backend {
	case backendLocal:
		return nil
	case backendJenkins:
	default:
		return fmt.Errorf("pipeline.test.backend must be %q or %q, not %q", backendLocal, backendJenkins, t.Backend)
	}
	j := t.Jenkins
	var errs []error
	if j.URL == "" {
		errs = append(errs, errors.New("pipeline.test.jenkins.url is required with backend jenkins"))
	} else if u, err := url.Parse(j.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("pipeline.test.jenkins.url must be http(s)://host[/path], not %q", redact.URL(j.URL)))
	} else if u.User != nil {
		errs = append(errs, errors.New("pipeline.test.jenkins.url must not carry credentials; give user, and the token in CCCP_JENKINS_TOKEN"))
	}
	if j.User == "" {
		errs = append(errs, errors.New("pipeline.test.jenkins.user is required with backend jenkins"))
	}
	if j.Token == "" {
		errs = append(errs, errors.New("pipeline.test.jenkins.token (or CCCP_JENKINS_TOKEN) is required with backend jenkins"))
	}
	if _, err := jenkins.JobPath(j.Job); err != nil {
		errs = append(errs, fmt.Errorf("pipeline.test.jenkins.job: %w", err))
	}
	if j.Poll < minJenkinsPoll {
		errs = append(errs, fmt.Errorf("pipeline.test.jenkins.poll must be at least %s, not %s", minJenkinsPoll, j.Poll))
	}
	if j.CAFile != "" {
		if _, err := os.Stat(j.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("pipeline.test.jenkins.ca_file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// jenkinsTesterConfig is the Jenkins tester's configuration from cccp's.
func (t *testStageConfig) jenkinsTesterConfig() jenkins.Config {
	j := t.Jenkins
	return jenkins.Config{URL: j.URL, User: j.User, Token: j.Token, Job: j.Job, Poll: j.Poll, CAFile: j.CAFile}
}

// openTestBackend returns the configured test stage backend, nil for the
// local one (the pipeline's own local.Tester). A Jenkins tester is checked
// against Jenkins first, so that a wrong URL, token or job fails at start
// with what to fix rather than at the first test.
func openTestBackend(ctx context.Context, t *testStageConfig, log *slog.Logger) (backend.Tester, error) {
	if t.Backend != backendJenkins {
		return nil, nil
	}
	cfg := t.jenkinsTesterConfig()
	cfg.Logger = log
	tr, err := jenkins.New(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := tr.Check(cctx); err != nil {
		return nil, fmt.Errorf("pipeline.test.jenkins: %w", err)
	}
	return tr, nil
}

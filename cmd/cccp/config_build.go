package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/cccp-project/cccp/internal/backend/openshift"
	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/registry"
)

// buildStageConfig is `pipeline.build`: which backend runs the build stage,
// and its settings.
type buildStageConfig struct {
	// Backend is local (buildah on this machine, the default) or openshift.
	Backend   string          `yaml:"backend"`
	OpenShift openShiftConfig `yaml:"openshift"`
	// MaxConcurrent is how many builds run at once (config_queue.go).
	MaxConcurrent int `yaml:"max_concurrent"`
	// Storage is the local backend's container storage of its own
	// (build_storage.go): default DATA/build-storage; "shared": the
	// machine's, never pruned.
	Storage string `yaml:"storage"`
	// User is the local backend's build user, whose subordinate ids
	// (/etc/subuid, /etc/subgid) root of RUN steps is mapped to, as
	// --build-user is for `cccp run`: unset or cccp-build, cccp-build
	// (root builds, with a warning, only when that user does not exist);
	// "", RUN steps run as the host's root, knowingly; another user that
	// cannot be used stops cccp (build_userns.go).
	User *string `yaml:"user"`

	// connect, when a test sets it, connects the OpenShift backend to a
	// fake cluster instead of the kubeconfig's (no YAML key reaches it).
	connect func(openshift.Config) (*openshift.Builder, error)
}

// openShiftConfig is `pipeline.build.openshift`, read only with backend
// openshift.
type openShiftConfig struct {
	Namespace    string `yaml:"namespace"`
	Kubeconfig   string `yaml:"kubeconfig"`
	Context      string `yaml:"context"`
	PushSecret   string `yaml:"push_secret"`
	PullSecret   string `yaml:"pull_secret"`
	SourceSecret string `yaml:"source_secret"`
	Registry     string `yaml:"registry"`
	Resources    struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	NodeSelector map[string]string `yaml:"node_selector"`
	WatchTimeout time.Duration     `yaml:"watch_timeout"`
}

// Build backends.
const (
	buildBackendLocal     = "local"
	buildBackendOpenShift = openshift.Name
)

// DefaultBuildUser is the build user when none is configured
// (hack/install-deps.sh makes it).
const DefaultBuildUser = "cccp-build"

// buildUser is the configured build user and whether it was chosen (set
// to anything but the default, whose absence only warns, as when unset).
func (b *buildStageConfig) buildUser() (name string, explicit bool) {
	if b.User == nil {
		return DefaultBuildUser, false
	}
	return *b.User, *b.User != DefaultBuildUser
}

func (b *buildStageConfig) defaults() {
	if b.Backend == "" {
		b.Backend = buildBackendLocal
	}
}

func (b *buildStageConfig) validate() error {
	switch b.Backend {
	case buildBackendLocal:
		return nil
	case buildBackendOpenShift:
	default:
		return fmt.Errorf("pipeline.build.backend must be %q or %q, not %q", buildBackendLocal, buildBackendOpenShift, b.Backend)
	}
	if err := b.openShift().Validate(); err != nil {
		return fmt.Errorf("pipeline.build.openshift: %w", err)
	}
	return nil
}

// openShift is the backend's own configuration.
func (b *buildStageConfig) openShift() openshift.Config {
	o := b.OpenShift
	return openshift.Config{
		Namespace: o.Namespace, Kubeconfig: o.Kubeconfig, Context: o.Context,
		PushSecret: o.PushSecret, PullSecret: o.PullSecret, SourceSecret: o.SourceSecret,
		Registry: o.Registry, Requests: o.Resources.Requests, Limits: o.Resources.Limits,
		NodeSelector: o.NodeSelector, WatchTimeout: o.WatchTimeout,
	}
}

// lintOptions are the index lint options of this configuration: an entry
// the configured build backend cannot build is an error.
func (c *serveConfig) lintOptions() index.LintOptions {
	o := index.LintOptions{AllowFile: c.Index.AllowFileURLs, Registries: c.Registry.Aliases}
	if c.Pipeline.Build.Backend == buildBackendOpenShift {
		o.PrebuildUnsupported = buildBackendOpenShift
	}
	return o
}

// openShiftBackend is the OpenShift builder's configuration when it is the
// configured build backend, else nil (the local one).
func (b *buildStageConfig) openShiftBackend() *openshift.Config {
	if b.Backend != buildBackendOpenShift {
		return nil
	}
	c := b.openShift()
	return &c
}

// validateBuild checks pipeline.build, and that an OpenShift cluster can
// push where cccp delivers: not to the embedded registry on loopback.
func (c *serveConfig) validateBuild() error {
	if err := c.Pipeline.Build.validate(); err != nil {
		return err
	}
	if c.Pipeline.Build.Backend == buildBackendOpenShift && c.Registry.External == "" &&
		c.Pipeline.Build.OpenShift.Registry == "" && registry.IsLoopback(c.Registry.Address) {
		return errors.New("pipeline.build.backend openshift: the cluster cannot push to the embedded registry on loopback " +
			c.Registry.Address + "; set registry.external (a registry both reach) or pipeline.build.openshift.registry")
	}
	return nil
}

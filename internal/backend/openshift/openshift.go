package openshift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	buildv1 "github.com/openshift/api/build/v1"
	buildclient "github.com/openshift/client-go/build/clientset/versioned"
	buildv1client "github.com/openshift/client-go/build/clientset/versioned/typed/build/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/cccp-project/cccp/internal/backend"
)

// Name is this backend's name in the configuration and in stored handles.
const Name = "openshift"

// Config is the `pipeline.build.openshift` block of cccp's configuration.
type Config struct {
	// Namespace the BuildConfigs and Builds live in. Required.
	Namespace string
	// Kubeconfig is the path of a kubeconfig file; empty means the
	// in-cluster service account.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means its current one.
	Context string
	// PushSecret names the secret (in Namespace) the build pushes with.
	PushSecret string
	// PullSecret names the secret the build pulls its base images with;
	// empty means the builder service account's own.
	PullSecret string
	// SourceSecret names the secret the build clones with (private
	// repositories); empty for public ones.
	SourceSecret string
	// Registry, when set, replaces the registry host of the push target and
	// of pinned parents: the delivery registry as the cluster reaches it
	// (for example an in-cluster service name) when cccp reaches it under
	// another name.
	Registry string
	// Requests and Limits are the build pod's resources, as Kubernetes
	// quantities by resource name ("cpu": "500m", "memory": "2Gi").
	Requests, Limits map[string]string
	// NodeSelector is the build pod's node selector.
	NodeSelector map[string]string
	// WatchTimeout is the server-side timeout asked for each watch; 0
	// means 5 minutes.
	WatchTimeout time.Duration
	// Logger receives the backend's own messages; nil discards them.
	Logger *slog.Logger
}

// Validate checks the configuration without contacting the cluster.
func (c Config) Validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace is required"))
	} else if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", c.Namespace, strings.Join(msgs, "; ")))
	}
	for key, name := range map[string]string{"push-secret": c.PushSecret, "pull-secret": c.PullSecret, "source-secret": c.SourceSecret} {
		if name == "" {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s %q: %s", key, name, strings.Join(msgs, "; ")))
		}
	}
	if _, err := c.resources(); err != nil {
		errs = append(errs, err)
	}
	for k, v := range c.NodeSelector {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("node-selector key %q: %s", k, strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("node-selector %s value %q: %s", k, v, strings.Join(msgs, "; ")))
		}
	}
	if c.Registry != "" && strings.ContainsAny(c.Registry, "/@ ") {
		errs = append(errs, fmt.Errorf("registry %q: a host[:port], without a path", c.Registry))
	}
	if c.WatchTimeout < 0 {
		errs = append(errs, fmt.Errorf("watch-timeout %s is negative", c.WatchTimeout))
	}
	return errors.Join(errs...)
}

func (c Config) resources() (corev1.ResourceRequirements, error) {
	var r corev1.ResourceRequirements
	var errs []error
	parse := func(kind string, in map[string]string) corev1.ResourceList {
		if len(in) == 0 {
			return nil
		}
		out := corev1.ResourceList{}
		for name, v := range in {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("resources.%s.%s %q: %w", kind, name, v, err))
				continue
			}
			out[corev1.ResourceName(name)] = q
		}
		return out
	}
	r.Requests = parse("requests", c.Requests)
	r.Limits = parse("limits", c.Limits)
	return r, errors.Join(errs...)
}

// Builder runs builds as OpenShift Builds. It is safe for concurrent use.
type Builder struct {
	cfg  Config
	res  corev1.ResourceRequirements
	api  buildv1client.BuildV1Interface
	logs rest.Interface // builds/log: the typed client has no method for it
	log  *slog.Logger

	clock clock

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per BuildConfig: update + instantiate
}

var _ interface {
	backend.Builder
	backend.Named
} = (*Builder)(nil)

// New connects to the cluster named by cfg: the kubeconfig at
// cfg.Kubeconfig, or the in-cluster service account when it is empty.
func New(cfg Config) (*Builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("openshift backend: %w", err)
	}
	rc, err := restConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("openshift backend: %w", err)
	}
	rc.UserAgent = "cccp (openshift build backend)"
	cs, err := buildclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("openshift backend: build client: %w", err)
	}
	return newBuilder(cfg, cs.BuildV1(), cs.BuildV1().RESTClient(), realClock{}), nil
}

// NewWithClients is New on clients the caller made: api for
// build.openshift.io, and logs, a REST client of that group for the
// builds/log subresource (the typed client has no method for it). Tests
// of code that wires the backend give openshift/client-go's fake
// clientset here.
func NewWithClients(cfg Config, api buildv1client.BuildV1Interface, logs rest.Interface) (*Builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("openshift backend: %w", err)
	}
	return newBuilder(cfg, api, logs, realClock{}), nil
}

func restConfig(cfg Config) (*rest.Config, error) {
	if cfg.Kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster credentials (set kubeconfig to run outside a cluster): %w", err)
		}
		return rc, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: cfg.Kubeconfig}
	over := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	return rc, nil
}

func newBuilder(cfg Config, api buildv1client.BuildV1Interface, logs rest.Interface, c clock) *Builder {
	res, _ := cfg.resources() // validated by the caller
	if cfg.WatchTimeout == 0 {
		cfg.WatchTimeout = 5 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builder{cfg: cfg, res: res, api: api, logs: logs, log: log, clock: c, locks: map[string]*sync.Mutex{}}
}

// Name is "openshift".
func (b *Builder) Name() string { return Name }

// lock serialises the update and instantiation of one BuildConfig.
func (b *Builder) lock(bc string) func() {
	b.mu.Lock()
	l, ok := b.locks[bc]
	if !ok {
		l = &sync.Mutex{}
		b.locks[bc] = l
	}
	b.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// StartBuild brings the entry's BuildConfig up to date and instantiates it
// at spec.Src.Commit. It returns once the Build exists.
func (b *Builder) StartBuild(ctx context.Context, spec backend.BuildSpec) (backend.Handle, error) {
	want, err := b.buildConfig(spec)
	if err != nil {
		return "", err
	}
	req := b.buildRequest(want.Name, spec)
	unlock := b.lock(want.Name)
	defer unlock()
	if err := b.ensureBuildConfig(ctx, want); err != nil {
		return "", err
	}
	build, err := b.api.BuildConfigs(b.cfg.Namespace).Instantiate(ctx, want.Name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("instantiate buildconfig %s/%s at %s: %w", b.cfg.Namespace, want.Name, spec.Src.Commit, err)
	}
	h := backend.Handle(b.cfg.Namespace + "/" + build.Name)
	if to := build.Spec.Output.To; to == nil || to.Name != want.Spec.Output.To.Name {
		// Someone else changed the BuildConfig between our update and the
		// instantiation: this Build pushes elsewhere.
		got := "<none>"
		if to != nil {
			got = to.Name
		}
		if err := b.Cancel(ctx, h); err != nil {
			b.log.Warn("cancel misdirected build", "build", h, "err", err)
		}
		return "", fmt.Errorf("build %s pushes to %s, not %s: buildconfig %s was changed by someone else", h, got, want.Spec.Output.To.Name, want.Name)
	}
	b.log.Info("build started", "build", h, "run", spec.RunID, "commit", spec.Src.Commit)
	return h, nil
}

// ensureBuildConfig creates want or updates the existing BuildConfig to it.
func (b *Builder) ensureBuildConfig(ctx context.Context, want *buildv1.BuildConfig) error {
	bcs := b.api.BuildConfigs(b.cfg.Namespace)
	for attempt := 0; ; attempt++ {
		have, err := bcs.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = bcs.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) && attempt < 3 {
				continue
			}
			if err != nil {
				return fmt.Errorf("create buildconfig %s/%s: %w", b.cfg.Namespace, want.Name, err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("get buildconfig %s/%s: %w", b.cfg.Namespace, want.Name, err)
		}
		if !needsUpdate(have, want) {
			return nil
		}
		upd := have.DeepCopy()
		upd.Spec = want.Spec
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		for k, v := range want.Labels {
			upd.Labels[k] = v
		}
		if upd.Annotations == nil {
			upd.Annotations = map[string]string{}
		}
		for k, v := range want.Annotations {
			upd.Annotations[k] = v
		}
		_, err = bcs.Update(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return fmt.Errorf("update buildconfig %s/%s: %w", b.cfg.Namespace, want.Name, err)
		}
		return nil
	}
}

// parseHandle splits `namespace/build-name`.
func parseHandle(h backend.Handle) (ns, name string, err error) {
	ns, name, ok := strings.Cut(string(h), "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", fmt.Errorf("openshift handle %q: want namespace/build-name", h)
	}
	return ns, name, nil
}

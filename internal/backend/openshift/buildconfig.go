package openshift

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"

	buildv1 "github.com/openshift/api/build/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cccp-project/cccp/internal/backend"
)

// Label and annotation keys on the objects this backend makes.
const (
	prefix = "cccp-project.github.io/"

	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelEntry     = prefix + "entry" // the BuildConfig's name, a valid label value
	LabelRun       = prefix + "run"   // the run ID, sanitised
	LabelRunKind   = prefix + "kind"  // the run's kind
	AnnotEntryKey  = prefix + "entry-key"
	AnnotRunID     = prefix + "run-id"
	AnnotCommit    = prefix + "commit"
	AnnotBranch    = prefix + "branch"
	managedByValue = "cccp"
)

var (
	notLabel      = regexp.MustCompile(`[^a-z0-9-]+`)
	notLabelValue = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// buildConfigName derives the BuildConfig's name from an entry's key
// (`app/job:tag`): lower-cased, runs of other characters turned into '-',
// cut to 40 characters, and a hash of the whole key appended, so that it
// is a DNS-1123 label, stable, readable and never shared by two keys. The
// Builds OpenShift names after it (`<name>-<n>`) and their pods
// (`<name>-<n>-build`) stay valid label values too.
func buildConfigName(key string) string {
	s := notLabel.ReplaceAllString(strings.ToLower(key), "-")
	s = strings.Trim(s, "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:4])
	if s == "" {
		return "cccp-" + h
	}
	return s + "-" + h
}

// labelValue makes s a valid label value (at most 63 characters of
// [A-Za-z0-9._-], starting and ending alphanumerically), appending a hash
// when it had to change s, so distinct inputs stay distinct.
func labelValue(s string) string {
	ok := len(s) <= 63 && s != ""
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (r != '-' && r != '_' && r != '.' || i == 0 || i == len(s)-1) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	v := notLabelValue.ReplaceAllString(s, "-")
	if len(v) > 54 {
		v = v[:54]
	}
	v = strings.Trim(v, "-_.")
	if v == "" {
		return hex.EncodeToString(sum[:4])
	}
	return v + "-" + hex.EncodeToString(sum[:4])
}

// unsupported is a StageError for what this backend cannot build.
func unsupported(format string, a ...any) error {
	return &backend.StageError{Reason: "Unsupported", Message: fmt.Sprintf(format, a...) + " (openshift build backend)"}
}

// buildConfig is the BuildConfig spec wants, or why this backend cannot
// build it.
func (b *Builder) buildConfig(spec backend.BuildSpec) (*buildv1.BuildConfig, error) {
	e := spec.Entry
	switch {
	case e == nil:
		return nil, fmt.Errorf("build spec of run %s has no entry", spec.RunID)
	case spec.Src.GitURL == "" || spec.Src.Commit == "":
		return nil, fmt.Errorf("build of %s: the source needs a git URL and a commit", e.Key())
	case spec.Push == "":
		return nil, fmt.Errorf("build of %s: no push target", e.Key())
	case e.PrebuildScript != "":
		return nil, unsupported("%s: prebuild-script is not supported", e.Key())
	case len(spec.Parents) > 1:
		return nil, unsupported("%s is built FROM %d images of this index; only one can be pinned (the final stage's)", e.Key(), len(spec.Parents))
	}
	contextDir, dockerfile, err := paths(e.GitPath, e.BuildContext, e.TargetFile)
	if err != nil {
		return nil, unsupported("%s: %v", e.Key(), err)
	}
	name := buildConfigName(e.Key())
	docker := &buildv1.DockerBuildStrategy{
		DockerfilePath: dockerfile,
		NoCache:        false,
	}
	if b.cfg.PullSecret != "" {
		docker.PullSecret = &corev1.LocalObjectReference{Name: b.cfg.PullSecret}
	}
	if len(spec.Parents) == 1 {
		docker.From = &corev1.ObjectReference{Kind: "DockerImage", Name: b.clusterRef(spec.Parents[0].DigestRef)}
	}
	source := buildv1.BuildSource{
		Type:       buildv1.BuildSourceGit,
		Git:        &buildv1.GitBuildSource{URI: spec.Src.GitURL, Ref: spec.Src.Branch},
		ContextDir: contextDir,
	}
	if b.cfg.SourceSecret != "" {
		source.SourceSecret = &corev1.LocalObjectReference{Name: b.cfg.SourceSecret}
	}
	output := buildv1.BuildOutput{To: &corev1.ObjectReference{Kind: "DockerImage", Name: b.clusterRef(spec.Push)}}
	if b.cfg.PushSecret != "" {
		output.PushSecret = &corev1.LocalObjectReference{Name: b.cfg.PushSecret}
	}
	history := int32(5)
	return &buildv1.BuildConfig{
		TypeMeta: metav1.TypeMeta{Kind: "BuildConfig", APIVersion: buildv1.GroupVersion.String()},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: b.cfg.Namespace,
			Labels:    map[string]string{LabelManagedBy: managedByValue, LabelEntry: name},
			Annotations: map[string]string{
				AnnotEntryKey: e.Key(),
			},
		},
		Spec: buildv1.BuildConfigSpec{
			RunPolicy:                    buildv1.BuildRunPolicyParallel,
			SuccessfulBuildsHistoryLimit: &history,
			FailedBuildsHistoryLimit:     &history,
			CommonSpec: buildv1.CommonSpec{
				Source: source,
				Strategy: buildv1.BuildStrategy{
					Type:           buildv1.DockerBuildStrategyType,
					DockerStrategy: docker,
				},
				Output:       output,
				Resources:    b.res,
				NodeSelector: buildv1.OptionalNodeSelector(b.cfg.NodeSelector),
			},
		},
	}, nil
}

// buildRequest instantiates BuildConfig bc for one run at its commit.
func (b *Builder) buildRequest(bc string, spec backend.BuildSpec) *buildv1.BuildRequest {
	noCache := false
	return &buildv1.BuildRequest{
		TypeMeta: metav1.TypeMeta{Kind: "BuildRequest", APIVersion: buildv1.GroupVersion.String()},
		ObjectMeta: metav1.ObjectMeta{
			Name: bc,
			Labels: map[string]string{
				LabelManagedBy: managedByValue,
				LabelEntry:     bc,
				LabelRun:       labelValue(spec.RunID),
				LabelRunKind:   labelValue(string(spec.Kind)),
			},
			Annotations: map[string]string{
				AnnotEntryKey: spec.Entry.Key(),
				AnnotRunID:    spec.RunID,
				AnnotCommit:   spec.Src.Commit,
				AnnotBranch:   spec.Src.Branch,
			},
		},
		Revision: &buildv1.SourceRevision{
			Type: buildv1.BuildSourceGit,
			Git:  &buildv1.GitSourceRevision{Commit: spec.Src.Commit},
		},
		TriggeredBy: []buildv1.BuildTriggerCause{{Message: "cccp run " + spec.RunID}},
		DockerStrategyOptions: &buildv1.DockerStrategyOptions{
			BuildArgs: []corev1.EnvVar{
				{Name: "CCCP_RUN_ID", Value: spec.RunID},
				{Name: "CCCP_COMMIT", Value: spec.Src.Commit},
			},
			NoCache: &noCache,
		},
	}
}

// paths turns an entry's git-path, build-context and target-file into
// OpenShift's contextDir (relative to the repository root) and
// dockerfilePath (relative to contextDir, which OpenShift requires it to
// stay inside).
func paths(gitPath, buildContext, targetFile string) (contextDir, dockerfile string, err error) {
	clean := func(base, p string) string {
		if strings.HasPrefix(p, "/") {
			base = ""
		}
		return path.Clean(path.Join("/", base, p))
	}
	root := clean("", gitPath)
	ctx := clean(root, buildContext)
	df := clean(root, targetFile)
	rel, ok := strings.CutPrefix(df, strings.TrimSuffix(ctx, "/")+"/")
	if !ok || rel == "" {
		return "", "", fmt.Errorf("target-file %s is outside build-context %s; OpenShift reads the Dockerfile from inside the context", df, ctx)
	}
	return strings.TrimPrefix(ctx, "/"), rel, nil
}

// clusterRef replaces ref's registry host with the configured Registry,
// when there is one.
func (b *Builder) clusterRef(ref string) string {
	if b.cfg.Registry == "" {
		return ref
	}
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return b.cfg.Registry + "/" + ref
	}
	return b.cfg.Registry + "/" + rest
}

// needsUpdate tells whether have lacks something of want: its spec, or one
// of its labels or annotations (others' labels are kept).
func needsUpdate(have, want *buildv1.BuildConfig) bool {
	if !equality.Semantic.DeepEqual(specWithoutDefaults(have.Spec, want.Spec), want.Spec) {
		return true
	}
	for k, v := range want.Labels {
		if have.Labels[k] != v {
			return true
		}
	}
	for k, v := range want.Annotations {
		if have.Annotations[k] != v {
			return true
		}
	}
	return false
}

// specWithoutDefaults clears in have what the server fills in by default
// and want leaves empty, so a defaulted BuildConfig compares equal.
func specWithoutDefaults(have, want buildv1.BuildConfigSpec) buildv1.BuildConfigSpec {
	h := *have.DeepCopy()
	if len(want.Triggers) == 0 && len(h.Triggers) == 0 {
		h.Triggers = want.Triggers
	}
	if want.ServiceAccount == "" {
		h.ServiceAccount = ""
	}
	if want.Source.Git != nil && h.Source.Git != nil && h.Source.Git.ProxyConfig == (buildv1.ProxyConfig{}) {
		h.Source.Git.ProxyConfig = want.Source.Git.ProxyConfig
	}
	return h
}

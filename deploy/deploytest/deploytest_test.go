package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	routev1 "github.com/openshift/api/route/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var update = flag.Bool("update", false, "rewrite deploy/openshift and deploy/kubernetes from the chart")

// valueSets are the chart's checked-in value sets, and the flat manifests
// in deploy/ rendered from them ("" for none).
var valueSets = []struct {
	name, values, manifest string
	privileged             bool
}{
	{"defaults", "", "", true},
	{"openshift-jenkins", "charts/cccp/ci/openshift-jenkins-values.yaml", "deploy/openshift/cccp.yaml", false},
	{"kubernetes-local", "charts/cccp/ci/kubernetes-local-values.yaml", "deploy/kubernetes/cccp.yaml", true},
}

func setup(t *testing.T) (root, home string, s *runtime.Scheme) {
	t.Helper()
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	s, err = Scheme()
	if err != nil {
		t.Fatal(err)
	}
	return root, t.TempDir(), s
}

func render(t *testing.T, root, home, values string) []byte {
	t.Helper()
	var files []string
	if values != "" {
		files = append(files, values)
	}
	out, err := Template(context.Background(), root, home, files...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects indexes decoded objects by kind; a kind twice is an error.
func objects(t *testing.T, objs []runtime.Object) map[string]runtime.Object {
	t.Helper()
	m := map[string]runtime.Object{}
	for _, o := range objs {
		k := typeName(o)
		if m[k] != nil {
			t.Fatalf("two %s objects", k)
		}
		m[k] = o
	}
	return m
}

func typeName(o runtime.Object) string {
	switch o.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *corev1.Secret:
		return "Secret"
	case *corev1.PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	case *rbacv1.Role:
		return "Role"
	case *rbacv1.RoleBinding:
		return "RoleBinding"
	case *networkingv1.Ingress:
		return "Ingress"
	case *routev1.Route:
		return "Route"
	}
	return "unexpected " + o.GetObjectKind().GroupVersionKind().String()
}

func TestChart(t *testing.T) {
	root, home, s := setup(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			args := []string{"lint", "--strict", "charts/cccp"}
			if vs.values != "" {
				args = append(args, "--values", vs.values)
			}
			if out, err := Run(context.Background(), root, home, args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			out := render(t, root, home, vs.values)
			objs, err := Decode(s, out)
			if err != nil {
				t.Fatalf("rendered chart does not decode strictly: %v", err)
			}
			m := objects(t, objs)
			for k := range m {
				if strings.HasPrefix(k, "unexpected") {
					t.Errorf("the chart renders an %s", k)
				}
			}
			d, ok := m["Deployment"].(*appsv1.Deployment)
			if !ok {
				t.Fatal("no Deployment")
			}
			checkDeployment(t, d, vs.privileged)
			if (m["Role"] != nil) == vs.privileged || (m["RoleBinding"] != nil) == vs.privileged {
				t.Errorf("Role %v, RoleBinding %v: want them exactly with the OpenShift backend", m["Role"] != nil, m["RoleBinding"] != nil)
			}
			if r, ok := m["Role"].(*rbacv1.Role); ok {
				checkRole(t, root, r)
				rb := m["RoleBinding"].(*rbacv1.RoleBinding)
				if rb.RoleRef.Name != r.Name || rb.Namespace != r.Namespace || len(rb.Subjects) != 1 ||
					rb.Subjects[0].Name != d.Spec.Template.Spec.ServiceAccountName || rb.Subjects[0].Namespace != "cccp" {
					t.Errorf("RoleBinding %+v does not bind Role %s/%s to the pod's service account %s", rb, r.Namespace, r.Name, d.Spec.Template.Spec.ServiceAccountName)
				}
				if r.Namespace != "cccp-builds" {
					t.Errorf("Role in namespace %q, want the build namespace cccp-builds", r.Namespace)
				}
			}
			if vs.manifest != "" {
				checkManifest(t, root, vs.manifest, vs.values, out)
			}
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, privileged bool) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1 (bbolt has one writer)", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %q, want Recreate", d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %+v liveness %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	var claim bool
	for _, v := range pod.Volumes {
		claim = claim || v.PersistentVolumeClaim != nil
	}
	if !claim {
		t.Error("no PersistentVolumeClaim volume for the data")
	}
	sc := c.SecurityContext
	if privileged {
		if sc == nil || sc.Privileged == nil || !*sc.Privileged {
			t.Errorf("container security context %+v, want privileged (a local backend runs buildah/podman in the pod)", sc)
		}
		return
	}
	if sc == nil || sc.Privileged != nil && *sc.Privileged {
		t.Fatalf("privileged without a local backend: %+v", sc)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container security context %+v, want no escalation, read-only root, drop ALL", sc)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || psc.RunAsUser != nil {
		t.Errorf("pod security context %+v, want runAsNonRoot, seccomp RuntimeDefault, no fixed UID (OpenShift assigns one)", psc)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("the OpenShift backend uses the in-cluster token, but it is not mounted")
	}
}

// checkRole: the Role grants exactly the requests the OpenShift backend's
// tests recorded, so neither can drift from the other.
func checkRole(t *testing.T, root string, r *rbacv1.Role) {
	t.Helper()
	want, err := recordedActions(filepath.Join(root, "internal/backend/openshift/testdata/actions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := granted(r)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the Role grants\n  %s\nthe OpenShift backend does\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// recordedActions reads actions.txt: `verb resource[/sub]` lines, sorted.
func recordedActions(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	slices.Sort(out)
	return slices.Compact(out), sc.Err()
}

// granted lists a Role's rules as `verb resource` in build.openshift.io;
// any other group, a wildcard or resourceNames is an error.
func granted(r *rbacv1.Role) ([]string, error) {
	var out []string
	for i, rule := range r.Rules {
		if !slices.Equal(rule.APIGroups, []string{"build.openshift.io"}) || len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
			return nil, errorf("rule %d: %+v: only build.openshift.io, no resourceNames or URLs", i, rule)
		}
		for _, res := range rule.Resources {
			for _, v := range rule.Verbs {
				if v == "*" || res == "*" {
					return nil, errorf("rule %d: wildcard", i)
				}
				out = append(out, v+" "+res)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkManifest(t *testing.T, root, manifest, values string, rendered []byte) {
	t.Helper()
	header := "# Generated by `go test ./deploy/deploytest -update` from charts/cccp with " + values + ".\n" +
		"# Edit the chart or the values file, not this file. Secrets are referenced by name only.\n"
	want := append([]byte(header), rendered...)
	path := filepath.Join(root, manifest)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the chart rendered with %s: run go test ./deploy/deploytest -update", manifest, values)
	}
}

// TestManifestsDecodeStrictly: every YAML file under deploy/ (besides
// cccp's own config) is a valid Kubernetes or OpenShift object.
func TestManifestsDecodeStrictly(t *testing.T) {
	root, _, s := setup(t)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "*", "*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("manifests under deploy/: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Decode(s, b)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if len(objs) == 0 {
			t.Errorf("%s: no objects", f)
		}
	}
}

// TestDecodeRefusesMisspelledField: the strict decoder is what catches a
// typo in a manifest; a lenient one would drop the field silently.
func TestDecodeRefusesMisspelledField(t *testing.T) {
	root, _, s := setup(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy/openshift/cccp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to string }{
		{"readinessProbe:", "readynessProbe:"},
		{"readOnlyRootFilesystem:", "readOnlyRootFileSystem:"},
		{"kind: Route", "kind: Rout"},
	} {
		if !bytes.Contains(b, []byte(tc.from)) {
			t.Fatalf("manifest has no %q", tc.from)
		}
		_, err := Decode(s, bytes.Replace(b, []byte(tc.from), []byte(tc.to), 1))
		if err == nil {
			t.Errorf("%s -> %s decoded without error", tc.from, tc.to)
		} else {
			t.Logf("%s: %v", tc.to, err)
		}
	}
}

// TestSchemaRefusesTypo: values.schema.json has additionalProperties false
// at every level, so helm refuses a misspelled value instead of ignoring it.
func TestSchemaRefusesTypo(t *testing.T) {
	root, home, _ := setup(t)
	for _, set := range []string{"servce.port=80", "config.pipeline.bulid.backend=openshift", "route.enabled=yes", "config.pipeline.build.backend=openshfit"} {
		_, err := Run(context.Background(), root, home, "template", "cccp", "charts/cccp", "--set", set)
		if err == nil {
			t.Errorf("--set %s rendered", set)
		} else if !strings.Contains(err.Error(), "schema") {
			t.Errorf("--set %s: %v, want a schema error", set, err)
		}
	}
}

func TestGranted(t *testing.T) {
	r := &rbacv1.Role{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}
	if _, err := granted(r); err == nil {
		t.Error("a rule on secrets in the core group was accepted")
	}
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

// TestSchemaAllowsEveryConfigKey: deploy/config.example.yaml has every key
// cccp reads (cmd/cccp checks that), so given whole as the chart's config it
// must pass the schema: the schema cannot fall behind cccp's configuration.
func TestSchemaAllowsEveryConfigKey(t *testing.T) {
	root, home, _ := setup(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy/config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values strings.Builder
	values.WriteString("config:\n")
	for _, l := range strings.Split(string(b), "\n") {
		values.WriteString("  " + l + "\n")
	}
	dir, err := os.MkdirTemp("", "cccp-schema-") // not t.TempDir: helm splits --values at commas
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(f, []byte(values.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Template(context.Background(), root, home, f); err != nil {
		t.Errorf("deploy/config.example.yaml as the chart's config: %v", err)
	}
}

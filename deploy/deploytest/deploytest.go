// Package deploytest renders cccp's Helm chart with the real helm binary and
// decodes manifests strictly into the Kubernetes and OpenShift API types, so
// tests of deploy/ and charts/cccp see what a cluster would accept.
package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	routev1 "github.com/openshift/api/route/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
)

// Root is the repository's top folder: the nearest parent of dir holding go.mod.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// Helm is the helm binary hack/tools.sh installs into bin/tools.
func Helm(root string) (string, error) {
	p := filepath.Join(root, "bin", "tools", "helm")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("helm is not installed at %s: run `make tools` (hack/tools.sh): %w", p, err)
	}
	return p, nil
}

// Run runs helm with args in root and returns its standard output; a
// failure carries helm's standard error. HELM_* state goes to a private
// folder so nothing of the user's helm setup leaks in.
func Run(ctx context.Context, root, home string, args ...string) ([]byte, error) {
	helm, err := Helm(root)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Template renders charts/cccp as release "cccp" in namespace "cccp" with
// the values files (relative to root) and returns the manifests.
func Template(ctx context.Context, root, home string, valuesFiles ...string) ([]byte, error) {
	args := []string{"template", "cccp", "charts/cccp", "--namespace", "cccp"}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	return Run(ctx, root, home, args...)
}

// Scheme knows the Kubernetes API types (client-go's scheme) and
// OpenShift's Route.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("kubernetes types: %w", err)
	}
	if err := routev1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("openshift route types: %w", err)
	}
	return s, nil
}

// Decode splits a multi-document YAML stream and decodes every document
// strictly into its API type: an unknown kind, an unknown or misspelled
// field, or a field given twice is an error naming the document.
func Decode(s *runtime.Scheme, manifests []byte) ([]runtime.Object, error) {
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufioReader(manifests))
	var objs []runtime.Object
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if isEmpty(doc) {
			continue
		}
		obj, gvk, err := ser.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", n, source(doc), err)
		}
		if gvk == nil || gvk.Kind == "" {
			return nil, fmt.Errorf("document %d (%s): no kind", n, source(doc))
		}
		objs = append(objs, obj)
	}
}

// isEmpty: only comments and blank lines.
func isEmpty(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// source is helm's "# Source: ..." line of a document, or its first line.
func source(doc []byte) string {
	for _, l := range strings.Split(string(doc), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "# Source: "); ok {
			return s
		}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(doc)), "\n")
	return first
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cccp-project/cccp/deploy/deploytest"
)

const (
	exampleConfig = "../../deploy/config.example.yaml"
	chartDir      = "../../charts/cccp"
)

// envMap is a getenv over a fixed set of variables.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// exampleSecrets are what the example file leaves to the environment.
var exampleSecrets = map[string]string{
	"CCCP_GITHUB_WEBHOOK_SECRET": "gh-hook-secret-0001",
	"CCCP_GITLAB_WEBHOOK_SECRET": "gl-hook-secret-0002",
	"CCCP_GITLAB_TOKEN":          "glpat-token-0003",
	"CCCP_ADMIN_TOKENS":          "admin-token-0004, admin-token-0005",
	"CCCP_SESSION_KEY":           "0123456789abcdef0123456789abcdef-session",
}

func TestLoadServeConfig(t *testing.T) {
	tests := []struct {
		name string
		// file is the path to load; content, when set, is written to a
		// temporary file first.
		file    string
		content string
		env     map[string]string
		// wantErr are substrings the error must contain; none: must load.
		wantErr []string
		// notInErr must not appear in the error (secret values).
		notInErr []string
		check    func(t *testing.T, c *serveConfig)
	}{
		{
			name: "example file with its secrets in the environment",
			file: exampleConfig,
			env:  exampleSecrets,
			check: func(t *testing.T, c *serveConfig) {
				want := map[string]bool{
					"listen":                  c.Listen == "127.0.0.1:8080",
					"base_url":                c.BaseURL == "https://cccp.example.com",
					"data":                    c.Data == "/var/lib/cccp",
					"index.forge/repo":        c.Index.Forge == "github" && c.Index.Repo == "example-org/container-index",
					"registry.address":        c.Registry.Address == DefaultRegistryAddr,
					"pipeline.rescan":         c.Pipeline.Rescan.Schedule == "0 3 * * 0" && c.Pipeline.Rescan.Parallel == 2 && c.Pipeline.Rescan.migration() == "",
					"pipeline.workers":        c.Pipeline.Workers == 2,
					"pipeline.blocking":       slices.Equal(c.Pipeline.Blocking, []string{"smoke", "user-script"}),
					"github app mode":         c.GitHub.AppID == 123456 && c.GitHub.PrivateKeyFile == "/etc/cccp/github-app.pem" && c.GitHub.Token == "",
					"github secret from env":  c.GitHub.WebhookSecret == exampleSecrets["CCCP_GITHUB_WEBHOOK_SECRET"],
					"gitlab token from env":   c.GitLab.Token == exampleSecrets["CCCP_GITLAB_TOKEN"] && c.GitLab.BaseURL == "https://gitlab.example.com",
					"gitea off":               !c.Gitea.enabled(),
					"admin tokens split":      slices.Equal(c.Web.AdminTokens, []string{"admin-token-0004", "admin-token-0005"}),
					"session key from env":    c.Web.SessionKey == exampleSecrets["CCCP_SESSION_KEY"],
					"comment_log_lines":       c.CommentLogLines == 20,
					"log_max_bytes is 16 MiB": c.Pipeline.LogMaxBytes == 16<<20,
					"pipeline.stage_timeout":  c.Pipeline.StageTimeout == 30*time.Minute,
					"pipeline.max_resumes":    c.Pipeline.MaxResumes == 3,
				}
				for what, ok := range want {
					if !ok {
						t.Errorf("%s: not as in the example file (config %+v)", what, *c)
					}
				}
			},
		},
		{
			name: "example file without the environment names every missing secret",
			file: exampleConfig,
			env:  map[string]string{},
			// GitLab is only enabled once its secret or token is given.
			wantErr: []string{"CCCP_GITHUB_WEBHOOK_SECRET"},
		},
		{
			name: "environment overrides the file",
			content: `index: {path: /srv/index}
data: /from/file
github: {webhook_secret: file-secret-aaaa, token: file-token-bbbb}
gitea: {base_url: https://gitea.example.com, webhook_secret: file-gitea-secret, token: file-gitea-token}
web: {admin_tokens: [file-admin], read_tokens: [file-reader], session_key: file-session-key-0123456789abcdef}
`,
			env: map[string]string{
				"CCCP_GITHUB_WEBHOOK_SECRET": "env-secret-cccc",
				"CCCP_GITHUB_TOKEN":          "env-token-dddd",
				"CCCP_GITEA_TOKEN":           "env-gitea-token",
				"CCCP_DATA":                  "/from/env",
				"CCCP_ADMIN_TOKENS":          " a1 ,, a2 ,",
				"CCCP_SESSION_KEY":           "env-session-key-0123456789abcdef0",
			},
			check: func(t *testing.T, c *serveConfig) {
				got := []string{c.GitHub.WebhookSecret, c.GitHub.Token, c.Gitea.WebhookSecret, c.Gitea.Token, c.Data, strings.Join(c.Web.AdminTokens, "|"), strings.Join(c.Web.ReadTokens, "|"), c.Web.SessionKey}
				want := []string{"env-secret-cccc", "env-token-dddd", "file-gitea-secret", "env-gitea-token", "/from/env", "a1|a2", "file-reader", "env-session-key-0123456789abcdef0"}
				if !slices.Equal(got, want) {
					t.Errorf("got %q\nwant %q (env wins; unset env keeps the file's value)", got, want)
				}
			},
		},
		{
			name:     "github token without webhook secret",
			content:  "index: {path: /srv/index}\ngithub: {token: ghp-secret-value-1}\n",
			wantErr:  []string{"github", "CCCP_GITHUB_WEBHOOK_SECRET"},
			notInErr: []string{"ghp-secret-value-1"},
		},
		{
			name:     "gitlab token from the environment without webhook secret",
			content:  "index: {path: /srv/index}\n",
			env:      map[string]string{"CCCP_GITLAB_TOKEN": "glpat-secret-value-2"},
			wantErr:  []string{"gitlab", "CCCP_GITLAB_WEBHOOK_SECRET"},
			notInErr: []string{"glpat-secret-value-2"},
		},
		{
			name:     "gitea token without webhook secret",
			content:  "index: {path: /srv/index}\ngitea: {base_url: https://gitea.example.com, token: gitea-secret-value-3}\n",
			wantErr:  []string{"gitea", "CCCP_GITEA_WEBHOOK_SECRET"},
			notInErr: []string{"gitea-secret-value-3"},
		},
		{
			name:    "gitlab webhook secret without token",
			content: "index: {path: /srv/index}\n",
			env:     map[string]string{"CCCP_GITLAB_WEBHOOK_SECRET": "s"},
			wantErr: []string{"CCCP_GITLAB_TOKEN"},
		},
		{
			name: "openshift build backend",
			content: `index: {path: /srv/index}
registry: {external: quay.example.org/acme}
pipeline:
  build:
    backend: openshift
    openshift:
      namespace: cccp-builds
      kubeconfig: /etc/cccp/kubeconfig
      push_secret: cccp-push
      resources: {requests: {cpu: 500m}, limits: {memory: 4Gi}}
      node_selector: {node-role.kubernetes.io/builder: ""}
`,
			check: func(t *testing.T, c *serveConfig) {
				o := c.Pipeline.Build.openShift()
				if c.Pipeline.Build.Backend != "openshift" || o.Namespace != "cccp-builds" || o.Kubeconfig != "/etc/cccp/kubeconfig" ||
					o.PushSecret != "cccp-push" || o.Requests["cpu"] != "500m" || o.Limits["memory"] != "4Gi" || len(o.NodeSelector) != 1 {
					t.Errorf("openshift config %+v", o)
				}
				if c.lintOptions().PrebuildUnsupported != "openshift" {
					t.Errorf("lint options %+v: an entry with prebuild-script must be an error with the openshift backend", c.lintOptions())
				}
			},
		},
		{
			name:    "build backend defaults to local",
			content: "index: {path: /srv/index}\n",
			check: func(t *testing.T, c *serveConfig) {
				if c.Pipeline.Build.Backend != "local" {
					t.Errorf("pipeline.build.backend = %q", c.Pipeline.Build.Backend)
				}
			},
		},
		{
			name:    "unknown build backend",
			content: "index: {path: /srv/index}\npipeline: {build: {backend: kubernetes}}\n",
			wantErr: []string{`pipeline.build.backend must be "local" or "openshift", not "kubernetes"`},
		},
		{
			name:    "openshift backend without a namespace, with a bad quantity",
			content: "index: {path: /srv/index}\npipeline: {build: {backend: openshift, openshift: {resources: {limits: {memory: lots}}}}}\n",
			wantErr: []string{"pipeline.build.openshift: namespace is required", "resources.limits.memory"},
		},
		{
			name:    "openshift backend with the embedded registry on loopback",
			content: "index: {path: /srv/index}\npipeline: {build: {backend: openshift, openshift: {namespace: cccp}}}\n",
			wantErr: []string{"cannot push to the embedded registry on loopback"},
		},
		{
			name:    "openshift block is checked only with its backend",
			content: "index: {path: /srv/index}\npipeline: {build: {backend: local, openshift: {namespace: Bad_NS}}}\n",
		},
		{
			name:    "unknown top-level key",
			content: "index: {path: /srv/index}\nlisten_address: 0.0.0.0:80\n",
			wantErr: []string{"listen_address"},
		},
		{
			name:    "unknown nested key",
			content: "index:\n  path: /srv/index\n  brnach: main\n",
			wantErr: []string{"brnach"},
		},
		{
			name:    "bad duration",
			content: "index: {path: /srv/index}\npipeline: {rescan: daily}\n",
			wantErr: []string{"daily", "schedule:"},
		},
		{
			name:    "bad index.removed",
			content: "index: {path: /srv/index, removed: delete}\n",
			wantErr: []string{"index.removed", `"delete"`, "delete-tags"},
		},
		{
			name:    "bad rescan schedule",
			content: "index: {path: /srv/index}\npipeline: {rescan: {schedule: \"0 3 * *\"}}\n",
			wantErr: []string{"pipeline.rescan.schedule", "five cron fields"},
		},
		{
			name:    "rescan schedule given as a duration",
			content: "index: {path: /srv/index}\npipeline: {rescan: {schedule: 24h}}\n",
			wantErr: []string{"pipeline.rescan.schedule", "@every 24h0m0s"},
		},
		{
			name:    "old rescan duration keeps its period",
			content: "index: {path: /srv/index}\npipeline: {rescan: 12h}\n",
			check: func(t *testing.T, c *serveConfig) {
				if c.Pipeline.Rescan.Schedule != "@every 12h0m0s" || !strings.Contains(c.Pipeline.Rescan.migration(), "schedule: \"@every 12h0m0s\"") {
					t.Errorf("rescan: 12h read as %+v, migration %q", c.Pipeline.Rescan, c.Pipeline.Rescan.migration())
				}
			},
		},
		{
			name:    "old rescan 0 is off",
			content: "index: {path: /srv/index}\npipeline: {rescan: 0}\n",
			check: func(t *testing.T, c *serveConfig) {
				if c.Pipeline.Rescan.Schedule != "off" {
					t.Errorf("rescan: 0 read as %+v", c.Pipeline.Rescan)
				}
			},
		},
		{
			name:    "empty file needs index.path",
			content: "",
			wantErr: []string{"index.path is required"},
		},
		{
			name:    "index.repo needs a known forge",
			content: "index: {path: /srv/index, repo: org/index, forge: bitbucket}\n",
			wantErr: []string{"index.forge", "bitbucket"},
		},
		{
			name:    "short session key",
			content: "index: {path: /srv/index}\n",
			env:     map[string]string{"CCCP_SESSION_KEY": "short"},
			wantErr: []string{"session_key", "32 bytes"},
		},
		{
			name:    "missing file",
			file:    filepath.Join(os.TempDir(), "cccp-no-such-config.yaml"),
			wantErr: []string{"cccp-no-such-config.yaml"},
		},
		{
			name:    "only index.path: defaults everywhere else",
			content: "index:\n  path: /srv/index\n",
			check: func(t *testing.T, c *serveConfig) {
				got := fmt.Sprintf("listen=%s base_url=%s registry=%s branch=%s workers=%d log_max=%d lines=%d rescan=%s forges=%v/%v/%v",
					c.Listen, c.BaseURL, c.Registry.Address, c.Index.Branch, c.Pipeline.Workers, c.Pipeline.LogMaxBytes,
					c.CommentLogLines, c.Pipeline.Rescan.Schedule, c.GitHub.enabled(), c.GitLab.enabled(), c.Gitea.enabled())
				want := "listen=127.0.0.1:8080 base_url=http://127.0.0.1:8080 registry=127.0.0.1:5115 branch=master workers=1 log_max=16777216 lines=20 rescan=0 3 * * 0 forges=false/false/false"
				if got != want {
					t.Errorf("defaults:\n got %s\nwant %s", got, want)
				}
				if want := filepath.Join(os.Getenv("XDG_DATA_HOME"), "cccp"); c.Data != want {
					t.Errorf("data = %q, want %q", c.Data, want)
				}
			},
		},
		{
			name:    "base_url follows listen and loses its trailing slash",
			content: "listen: 0.0.0.0:9090\nindex: {path: /srv/index}\n",
			check: func(t *testing.T, c *serveConfig) {
				if c.BaseURL != "http://0.0.0.0:9090" {
					t.Errorf("base_url = %q, want http://0.0.0.0:9090", c.BaseURL)
				}
			},
		},
		{
			name:    "explicit base_url is trimmed",
			content: "base_url: https://cccp.example.com/\nindex: {path: /srv/index}\n",
			check: func(t *testing.T, c *serveConfig) {
				if c.BaseURL != "https://cccp.example.com" {
					t.Errorf("base_url = %q", c.BaseURL)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// defaultDataDir reads the process environment.
			t.Setenv("CCCP_DATA", "")
			t.Setenv("XDG_DATA_HOME", t.TempDir())
			path := tt.file
			if path == "" {
				path = writeConfig(t, tt.content)
			}
			c, err := loadServeConfig(path, envMap(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("loaded, want an error containing %q", tt.wantErr)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				for _, s := range tt.notInErr {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q shows the secret %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// yamlKeys lists the key paths of a struct type's yaml tags, e.g.
// "index.git_url".
func yamlKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, prefix+name)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			keys = append(keys, yamlKeys(f.Type, prefix+name+".")...)
		}
	}
	return keys
}

// nodeKeys lists the key paths of a YAML mapping.
func nodeKeys(n *yaml.Node, prefix string) []string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return nodeKeys(n.Content[0], prefix)
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := prefix + n.Content[i].Value
		keys = append(keys, k)
		keys = append(keys, nodeKeys(n.Content[i+1], k+".")...)
	}
	return keys
}

// uncommentBlock removes "# " from the lines from the one starting with
// "# "+key up to the next line that is not a comment.
func uncommentBlock(t *testing.T, text, key string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "# "+key) })
	if start < 0 {
		t.Fatalf("no commented-out %q block", key)
	}
	for i := start; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		lines[i] = strings.TrimPrefix(strings.TrimPrefix(lines[i], "#"), " ")
	}
	return strings.Join(lines, "\n")
}

func TestConfigExampleIsComplete(t *testing.T) {
	raw, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	shown := nodeKeys(&doc, "")
	// The example configures GitHub and GitLab; Gitea is commented out.
	for _, key := range yamlKeys(reflect.TypeOf(serveConfig{}), "") {
		if strings.HasPrefix(key, "gitea") || key == "gitlab.app_id" || key == "gitlab.private_key_file" {
			continue // GitHub-only keys; Gitea's block is checked below
		}
		if !slices.Contains(shown, key) {
			t.Errorf("deploy/config.example.yaml does not show %q", key)
		}
	}

	t.Run("gitea block uncommented", func(t *testing.T) {
		path := writeConfig(t, uncommentBlock(t, string(raw), "gitea:"))
		env := map[string]string{"CCCP_GITEA_WEBHOOK_SECRET": "gitea-hook", "CCCP_GITEA_TOKEN": "gitea-token"}
		for k, v := range exampleSecrets {
			env[k] = v
		}
		c, err := loadServeConfig(path, envMap(env))
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if !c.Gitea.enabled() || c.Gitea.BaseURL != "https://gitea.example.com" || c.Gitea.Token != "gitea-token" {
			t.Errorf("gitea = %+v, want enabled at https://gitea.example.com", c.Gitea)
		}
	})
}

// renderChart renders charts/cccp with the real helm (bin/tools/helm,
// installed by hack/tools.sh), its values.yaml overlaid by set, and
// returns the manifests by kind.
func renderChart(t *testing.T, set map[string]any, valuesFiles ...string) map[string]map[string]any {
	t.Helper()
	root, err := deploytest.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir(): helm splits --values at commas, which subtest names have.
	dir, err := os.MkdirTemp("", "cccp-chart-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var files []string
	for _, f := range valuesFiles {
		abs, err := filepath.Abs(f) // helm runs in the repository's root
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	if set != nil {
		b, err := yaml.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "set.yaml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out, err := deploytest.Template(context.Background(), root, filepath.Join(dir, "helm"), files...)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string]any{}
	for _, doc := range strings.Split(string(out), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("helm rendered invalid YAML: %v\n%s", err, doc)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		if kind == "" || obj["apiVersion"] == nil || m[kind] != nil {
			t.Fatalf("helm rendered no kind/apiVersion, or a second %s:\n%s", kind, doc)
		}
		m[kind] = obj
	}
	return m
}

// dig follows keys (strings for maps, ints for lists) into a manifest.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a mapping: %v", p, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: not a list that long: %v", p, v)
			}
			v = l[k]
		}
	}
	return v
}

func TestConfigChart(t *testing.T) {
	t.Run("Chart.yaml", func(t *testing.T) {
		var chart map[string]any
		b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &chart); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"apiVersion": "v2", "name": "cccp", "type": "application"} {
			if chart[k] != want {
				t.Errorf("%s = %v, want %s", k, chart[k], want)
			}
		}
		for _, k := range []string{"version", "appVersion", "description"} {
			if s, _ := chart[k].(string); s == "" {
				t.Errorf("%s missing (or not a string)", k)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		m := renderChart(t, nil)
		for _, kind := range []string{"Deployment", "Service", "PersistentVolumeClaim", "Secret", "ConfigMap", "ServiceAccount"} {
			if m[kind] == nil {
				t.Errorf("no %s rendered", kind)
			}
		}
		if m["Ingress"] != nil {
			t.Error("Ingress rendered while ingress.enabled is false")
		}
		d := m["Deployment"]
		if got := dig(t, d, "spec", "replicas"); got != 1 {
			t.Errorf("replicas = %v, want 1 (bbolt has one writer)", got)
		}
		if got := dig(t, d, "spec", "strategy", "type"); got != "Recreate" {
			t.Errorf("strategy = %v, want Recreate", got)
		}
		c := dig(t, d, "spec", "template", "spec", "containers", 0)
		if got := dig(t, c, "securityContext", "privileged"); got != true {
			t.Errorf("privileged = %v, want true (buildah and podman run in the pod)", got)
		}
		if got := dig(t, c, "image"); got != "registry.example.com/cccp/cccp:0.1.0" {
			t.Errorf("image = %v", got)
		}
		var envNames []string
		for _, e := range dig(t, c, "env").([]any) {
			envNames = append(envNames, dig(t, e, "name").(string))
		}
		for name := range exampleSecrets {
			if !slices.Contains(envNames, name) {
				t.Errorf("container env lacks %s (has %v)", name, envNames)
			}
		}
		claim := dig(t, d, "spec", "template", "spec", "volumes", 2, "persistentVolumeClaim", "claimName")
		if claim != dig(t, m["PersistentVolumeClaim"], "metadata", "name") || claim != "cccp" {
			t.Errorf("data volume claims %v, the chart's PVC is %v", claim, dig(t, m["PersistentVolumeClaim"], "metadata", "name"))
		}
		if got := dig(t, m["Secret"], "data"); got != nil {
			t.Errorf("secret data = %v, want none (every value empty)", got)
		}

		// The rendered config is one cccp accepts, with the chart's secrets.
		cfgText, _ := dig(t, m["ConfigMap"], "data", "config.yaml").(string)
		c2, err := loadServeConfig(writeConfig(t, cfgText), envMap(map[string]string{"CCCP_ADMIN_TOKENS": "a"}))
		if err != nil {
			t.Fatalf("the chart's config.yaml does not load: %v\n%s", err, cfgText)
		}
		if c2.Listen != "0.0.0.0:8080" || c2.Data != "/var/lib/cccp" || c2.Pipeline.Rescan.Schedule != "0 3 * * 0" {
			t.Errorf("chart config: listen %s data %s rescan %s", c2.Listen, c2.Data, c2.Pipeline.Rescan.Schedule)
		}
	})

	t.Run("secrets from values, ingress on, registry exposed", func(t *testing.T) {
		m := renderChart(t, map[string]any{
			"secrets": map[string]any{
				"env":                 map[string]any{"CCCP_GITHUB_WEBHOOK_SECRET": "hook", "CCCP_GITHUB_TOKEN": ""},
				"githubAppPrivateKey": "-----BEGIN RSA PRIVATE KEY-----\n",
			},
			"ingress":          map[string]any{"enabled": true, "className": "nginx", "annotations": map[string]any{}, "host": "cccp.test", "tlsSecretName": "cccp-tls"},
			"service":          map[string]any{"type": "ClusterIP", "port": 80, "registryPort": 5115},
			"fullnameOverride": "bot",
		})
		data, _ := dig(t, m["Secret"], "data").(map[string]any)
		if len(data) != 2 || data["CCCP_GITHUB_WEBHOOK_SECRET"] != base64.StdEncoding.EncodeToString([]byte("hook")) || data["github-app-private-key.pem"] == nil {
			t.Errorf("secret data = %v, want the webhook secret and the key only", data)
		}
		if got := dig(t, m["Ingress"], "spec", "rules", 0, "host"); got != "cccp.test" {
			t.Errorf("ingress host = %v", got)
		}
		if got := dig(t, m["Ingress"], "spec", "rules", 0, "http", "paths", 0, "backend", "service", "name"); got != "bot" {
			t.Errorf("ingress backend = %v, want the service bot", got)
		}
		if got := dig(t, m["Service"], "spec", "ports", 1, "port"); got != 5115 {
			t.Errorf("registry port = %v", got)
		}
	})

	t.Run("existing secret and claim", func(t *testing.T) {
		m := renderChart(t, map[string]any{
			"existingSecret": "cccp-secrets",
			"persistence":    map[string]any{"size": "1Gi", "storageClass": "", "accessMode": "ReadWriteOnce", "existingClaim": "cccp-data"},
		})
		if m["Secret"] != nil || m["PersistentVolumeClaim"] != nil {
			t.Errorf("rendered a Secret or PVC although existing ones are named")
		}
		spec := dig(t, m["Deployment"], "spec", "template", "spec")
		if got := dig(t, spec, "containers", 0, "env", 1, "valueFrom", "secretKeyRef", "name"); got != "cccp-secrets" {
			t.Errorf("env refers to secret %v, want cccp-secrets", got)
		}
		if got := dig(t, spec, "volumes", 1, "secret", "secretName"); got != "cccp-secrets" {
			t.Errorf("key volume refers to secret %v", got)
		}
		if got := dig(t, spec, "volumes", 2, "persistentVolumeClaim", "claimName"); got != "cccp-data" {
			t.Errorf("claim = %v, want cccp-data", got)
		}
	})

	// The checked-in value sets (deploy/openshift and deploy/kubernetes are
	// rendered from them) give a config.yaml cccp accepts, with the
	// backends they name.
	for _, tc := range []struct {
		values, build, test string
		env                 map[string]string
	}{
		{"openshift-jenkins", "openshift", "jenkins", map[string]string{"CCCP_GITHUB_WEBHOOK_SECRET": "h", "CCCP_GITLAB_WEBHOOK_SECRET": "h",
			"CCCP_GITLAB_TOKEN": "t", "CCCP_JENKINS_TOKEN": "j", "CCCP_ADMIN_TOKENS": "a"}},
		{"kubernetes-local", "local", "local", map[string]string{"CCCP_GITEA_WEBHOOK_SECRET": "h", "CCCP_GITEA_TOKEN": "t", "CCCP_ADMIN_TOKENS": "a"}},
	} {
		t.Run(tc.values, func(t *testing.T) {
			m := renderChart(t, nil, filepath.Join(chartDir, "ci", tc.values+"-values.yaml"))
			cfgText, _ := dig(t, m["ConfigMap"], "data", "config.yaml").(string)
			c, err := loadServeConfig(writeConfig(t, cfgText), envMap(tc.env))
			if err != nil {
				t.Fatalf("the chart's config.yaml does not load: %v\n%s", err, cfgText)
			}
			if c.Pipeline.Build.Backend != tc.build || c.Pipeline.Test.Backend != tc.test {
				t.Errorf("backends build %q test %q, want %q %q", c.Pipeline.Build.Backend, c.Pipeline.Test.Backend, tc.build, tc.test)
			}
		})
	}
}

// TestServeRefusesBadConfig: a broken configuration file is an error even
// when the command line gives everything else; nothing starts.
func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown key", "index:\n  path: /x\n  pth: /y\n", "pth"},
		{"secretless forge", "github:\n  token: t0ken\n", "CCCP_GITHUB_WEBHOOK_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCaptured(t, "serve", "--config", path, "--index", dir, "--data", filepath.Join(dir, "data"))
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("serve with %q: exit %d, stderr %q; want %d naming %q", tc.name, code, stderr, exitUsage, tc.want)
			}
		})
	}
}

// TestServeBuildsOnOpenShiftWhenConfigured: pipeline.build.backend
// openshift reaches the OpenShift backend, which reads its kubeconfig when
// serve starts (here a missing one, so serve stops naming it).
func TestServeBuildsOnOpenShiftWhenConfigured(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "no-such-kubeconfig")
	path := filepath.Join(dir, "config.yaml")
	cfg := "registry: {external: 127.0.0.1:1/openshift-wiring}\npipeline:\n  build:\n    backend: openshift\n    openshift: {namespace: cccp-builds, kubeconfig: " + kubeconfig + "}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCaptured(t, "serve", "--config", path, "--index", dir, "--data", filepath.Join(dir, "data"))
	if code == 0 || !strings.Contains(stderr, "openshift backend: kubeconfig "+kubeconfig) {
		t.Errorf("serve: exit %d, stderr %q; want it to fail reading the OpenShift kubeconfig", code, stderr)
	}
}

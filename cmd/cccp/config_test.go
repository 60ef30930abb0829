package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
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
					"pipeline.rescan":         c.Pipeline.Rescan == 24*time.Hour,
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
			wantErr: []string{"daily"},
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
					c.CommentLogLines, c.Pipeline.Rescan, c.GitHub.enabled(), c.GitLab.enabled(), c.Gitea.enabled())
				want := "listen=127.0.0.1:8080 base_url=http://127.0.0.1:8080 registry=127.0.0.1:5115 branch=master workers=1 log_max=16777216 lines=20 rescan=0s forges=false/false/false"
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

// chartFuncs are the few Sprig functions the chart's templates use, with
// Helm's meaning. This is not Helm: it renders the chart closely enough to
// catch YAML, indentation and naming mistakes, since helm is not installed
// where these tests run.
func chartFuncs(tpl **template.Template) template.FuncMap {
	empty := func(v any) bool {
		if v == nil {
			return true
		}
		r := reflect.ValueOf(v)
		switch r.Kind() {
		case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
			return r.Len() == 0
		case reflect.Bool:
			return !r.Bool()
		case reflect.Int, reflect.Int64, reflect.Int32:
			return r.Int() == 0
		case reflect.Float64:
			return r.Float() == 0
		}
		return false
	}
	indent := func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	}
	return template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b bytes.Buffer
			err := (*tpl).ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"toYaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		},
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"quote":   func(v any) string { return fmt.Sprintf("%q", fmt.Sprint(v)) },
		"default": func(def any, v ...any) any {
			if len(v) == 0 || empty(v[0]) {
				return def
			}
			return v[0]
		},
		"b64enc": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"sha256sum": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
		"list": func(v ...any) []any { return v },
	}
}

// renderChart renders every template of the chart with values.yaml
// overlaid by set (top-level keys replaced) and returns the manifests by
// kind.
func renderChart(t *testing.T, set map[string]any) map[string]map[string]any {
	t.Helper()
	var chart, values map[string]any
	for file, dst := range map[string]*map[string]any{"Chart.yaml": &chart, "values.yaml": &values} {
		b, err := os.ReadFile(filepath.Join(chartDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, dst); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	for k, v := range set {
		values[k] = v
	}
	var tpl *template.Template
	tpl = template.New("chart").Funcs(chartFuncs(&tpl)).Option("missingkey=error")
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates: %v", err)
	}
	var manifests []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tpl.New(filepath.Base(f)).Parse(string(b)); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		if strings.HasSuffix(f, ".yaml") {
			manifests = append(manifests, filepath.Base(f))
		}
	}
	data := map[string]any{
		"Values":  values,
		"Chart":   map[string]any{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
		"Release": map[string]any{"Name": "ci", "Namespace": "cccp", "Service": "Helm"},
	}
	out := map[string]map[string]any{}
	for _, name := range manifests {
		var b bytes.Buffer
		if err := tpl.ExecuteTemplate(&b, name, data); err != nil {
			t.Fatalf("render %s: %v", name, err)
		}
		if strings.TrimSpace(b.String()) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(b.Bytes(), &m); err != nil {
			t.Fatalf("%s renders invalid YAML: %v\n%s", name, err, b.String())
		}
		kind, _ := m["kind"].(string)
		if kind == "" || m["apiVersion"] == nil {
			t.Fatalf("%s renders no kind/apiVersion:\n%s", name, b.String())
		}
		out[kind] = m
	}
	return out
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
		if claim != dig(t, m["PersistentVolumeClaim"], "metadata", "name") || claim != "ci-cccp" {
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
		if c2.Listen != "0.0.0.0:8080" || c2.Data != "/var/lib/cccp" || c2.Pipeline.Rescan != 24*time.Hour {
			t.Errorf("chart config: listen %s data %s rescan %s", c2.Listen, c2.Data, c2.Pipeline.Rescan)
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

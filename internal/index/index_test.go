package index

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const sharedData = "../../../shared/testdata/container-index"

// writeIndex writes files (name -> content) under dir/index.d.
func writeIndex(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "index.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, "index.d", n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// summary is "rule@line" for each finding, in order.
func summary(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s@%d", f.Rule, f.Pos.Line))
	}
	return out
}

func loadLint(t *testing.T, dir string, opts LintOptions) (*Index, []Finding) {
	t.Helper()
	idx, fs, err := Load(context.Background(), dir, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fs = append(fs, Lint(idx, opts)...)
	SortFindings(fs)
	return idx, fs
}

// entry renders one project with good defaults, overridden by kv lines.
func entry(id, job string, kv ...string) string {
	fields := map[string]string{
		"id": id, "app-id": "app", "job-id": job, "git-url": "https://git.example.org/" + job,
		"git-path": "/", "notify-email": "dev@example.org",
	}
	order := []string{"id", "app-id", "job-id", "git-url", "git-path", "notify-email"}
	for _, l := range kv {
		k, v, _ := strings.Cut(l, ": ")
		if _, ok := fields[k]; !ok {
			order = append(order, k)
		}
		fields[k] = v
	}
	var b strings.Builder
	for i, k := range order {
		if fields[k] == "<omit>" {
			continue
		}
		prefix := "    "
		if i == 0 {
			prefix = "  - "
		}
		fmt.Fprintf(&b, "%s%s: %s\n", prefix, k, fields[k])
	}
	return b.String()
}

func TestLintRules(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		opts  LintOptions
		want  []string
	}{
		{"clean", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web")}, LintOptions{}, nil},
		{"yaml syntax", map[string]string{"app.yaml": "Projects:\n  - id: 1\n    job-id: [x\n"}, LintOptions{}, []string{"yaml@3"}},
		{"field type", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-branch: {a: b}")}, LintOptions{}, []string{"type@8"}},
		{"required missing", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: <omit>")}, LintOptions{}, []string{"required@2"}},
		{"required empty", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "notify-email: null")}, LintOptions{}, []string{"required@7"}},
		{"unknown field", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "build_context: ./")}, LintOptions{}, []string{"unknown-field@8"}},
		{"app-id differs from file", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "app-id: other")}, LintOptions{}, []string{"app-id-file@3"}},
		{"library outside library.yaml", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "app-id: library")}, LintOptions{}, []string{"library@3"}},
		{"library in library.yaml", map[string]string{"library.yaml": "Projects:\n" + entry("1", "web", "app-id: library")}, LintOptions{}, nil},
		{"name format", map[string]string{"app.yaml": "Projects:\n" + entry("1", "Web_App")}, LintOptions{}, []string{"name-format@4"}},
		{"name too long", map[string]string{"app.yaml": "Projects:\n" + entry("1", strings.Repeat("a", 260))}, LintOptions{}, []string{"name-format@4"}},
		{"duplicate id", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web") + entry("1", "api")}, LintOptions{}, []string{"duplicate-id@8"}},
		{"same id in two files", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web"), "b.yaml": "Projects:\n" + entry("1", "web", "app-id: b")}, LintOptions{}, nil},
		{"duplicate image", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "desired-tag: v1") + entry("2", "web", "desired-tags: [v2, v1]")}, LintOptions{}, []string{"duplicate-image@15"}},
		{"same name other tag", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "desired-tag: v1") + entry("2", "web", "desired-tag: v2")}, LintOptions{}, nil},
		{"git-url ext", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: ext::sh -c id")}, LintOptions{}, []string{"git-url@5"}},
		{"git-url option", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: --upload-pack=id")}, LintOptions{}, []string{"git-url@5"}},
		{"git-url not a url", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: git_url")}, LintOptions{}, []string{"git-url@5"}},
		{"git-url password", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: https://u:p@h/r")}, LintOptions{}, []string{"git-url@5"}},
		{"git-url ftp", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: ftp://h/r")}, LintOptions{}, []string{"git-url@5"}},
		{"git-url file refused", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: file:///srv/r")}, LintOptions{}, []string{"git-url@5"}},
		{"git-url file allowed", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-url: file:///srv/r")}, LintOptions{AllowFile: true}, nil},
		{"git-url scp git http ssh", map[string]string{"app.yaml": "Projects:\n" + entry("1", "a", "git-url: git@h.org:x/y.git") +
			entry("2", "b", "git-url: git://h.org/x") + entry("3", "c", "git-url: http://h.org/x") + entry("4", "d", "git-url: ssh://git@h.org/x")}, LintOptions{}, nil},
		{"git-path escapes", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-path: a/../../b")}, LintOptions{}, []string{"path-escape@6"}},
		{"build-context up inside repo", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-path: 10.0/", "build-context: ../")}, LintOptions{}, nil},
		{"build-context escapes", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "git-path: 10.0/", "build-context: ../../")}, LintOptions{}, []string{"path-escape@8"}},
		{"target-file escapes", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "target-file: ../Dockerfile")}, LintOptions{}, []string{"path-escape@8"}},
		{"prebuild-context escapes", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "prebuild-script: x.sh", "prebuild-context: ..")}, LintOptions{}, []string{"path-escape@9"}},
		{"tag format", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "desired-tag: .hidden", "desired-tags: [ok, 'a b']")}, LintOptions{}, []string{"tag-format@8", "tag-format@9"}},
		{"numeric tag kept as written", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "desired-tag: 3.10")}, LintOptions{}, nil},
		{"email", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "notify-email: [a@b.org, nobody]")}, LintOptions{}, []string{"email@7"}},
		{"notify-on-success bad", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "notify-on-success: sometimes")}, LintOptions{}, []string{"notify-on-success@8"}},
		{"notify-on-success false", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "notify-on-success: false")}, LintOptions{}, nil},
		{"email without dot", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "notify-email: a@localhost")}, LintOptions{}, []string{"email@7"}},
		{"prebuild on a backend without it", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "prebuild-script: x.sh", "prebuild-context: .")}, LintOptions{PrebuildUnsupported: "openshift"}, []string{"prebuild-unsupported@8"}},
		{"prebuild on the local backend", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "prebuild-script: x.sh", "prebuild-context: .")}, LintOptions{}, nil},
		{"prebuild without context", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "prebuild-script: x.sh")}, LintOptions{}, []string{"prebuild@8"}},
		{"depends-on bad ref", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "depends-on: [app/Bad]")}, LintOptions{}, []string{"depends-on@8"}},
		{"depends-on external", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "depends-on: quay.io/app/x:1, other/x, busybox")}, LintOptions{}, nil},
		{"unresolved name", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "depends-on: app/nothing:latest")}, LintOptions{}, []string{"unresolved-dependency@8"}},
		{"unresolved tag", map[string]string{"app.yaml": "Projects:\n" + entry("1", "base") + entry("2", "web", "depends-on: app/base:7")}, LintOptions{}, []string{"unresolved-dependency@14"}},
		{"own registry must resolve", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "depends-on: reg.example.org/app/none")}, LintOptions{Registries: []string{"reg.example.org"}}, []string{"unresolved-dependency@8"}},
		{"library ref resolves", map[string]string{"library.yaml": "Projects:\n" + entry("1", "base", "app-id: library", "desired-tag: 7"), "app.yaml": "Projects:\n" + entry("1", "web", "depends-on: base:7")}, LintOptions{}, nil},
		{"self cycle", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web", "depends-on: app/web")}, LintOptions{}, []string{"cycle@8"}},
		{"three cycle", map[string]string{"app.yaml": "Projects:\n" + entry("1", "a", "depends-on: app/c") + entry("2", "b", "depends-on: app/a") + entry("3", "c", "depends-on: app/b")}, LintOptions{}, []string{"cycle@15"}},
		{"duplicate key", map[string]string{"app.yaml": "Projects:\n" + entry("1", "web") + "    git-path: /\n"}, LintOptions{}, []string{"duplicate-key@8"}},
		{"not a list", map[string]string{"app.yaml": "Projects: {a: b}\n"}, LintOptions{}, []string{"type@1"}},
		{"no Projects", map[string]string{"app.yaml": "Other: []\n"}, LintOptions{}, []string{"required@1", "unknown-field@1"}},
		{"empty file", map[string]string{"app.yaml": "# all commented out\n"}, LintOptions{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeIndex(t, tt.files)
			_, fs := loadLint(t, dir, tt.opts)
			if got := summary(fs); !slices.Equal(got, tt.want) {
				t.Errorf("findings %v, want %v\n%v", got, tt.want, fs)
			}
		})
	}
}

func TestCycleMessageHasPath(t *testing.T) {
	dir := writeIndex(t, map[string]string{"app.yaml": "Projects:\n" + entry("1", "a", "depends-on: app/b") + entry("2", "b", "depends-on: app/a")})
	_, fs := loadLint(t, dir, LintOptions{})
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "app/a:latest -> app/b:latest -> app/a:latest") {
		t.Fatalf("findings %v, want one cycle a -> b -> a", fs)
	}
}

func TestLoadFieldsAndPositions(t *testing.T) {
	idx, fs := loadLint(t, "../../testdata/index/valid", LintOptions{})
	if len(fs) != 0 {
		t.Fatalf("valid example has findings: %v", fs)
	}
	if idx.Form != IndexD || len(idx.Entries) != 4 || len(idx.Files) != 2 {
		t.Fatalf("form %v, %d entries, %d files", idx.Form, len(idx.Entries), len(idx.Files))
	}
	base, _ := idx.Entry("example/base")
	web, _ := idx.Entry("example/web:latest")
	tools, _ := idx.Entry("example/tools")
	run, ok := idx.ByImage("runtime:1.0")
	if base == nil || web == nil || tools == nil || !ok {
		t.Fatal("lookups failed")
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"defaults", web.GitBranch + " " + web.TargetFile + " " + web.DesiredTag, "master Dockerfile latest"},
		{"tags", strings.Join(base.Tags(), ","), "latest,v1,v1.2"},
		{"email list", strings.Join(web.NotifyEmail, ","), "maintainer@example.org,web-team@example.org"},
		{"depends-on comma string", strings.Join(tools.DependsOn, ","), "example/web:latest,example/base"},
		{"entry pos", web.Pos.String(), "../../testdata/index/valid/index.d/example.yaml:15:5"},
		{"field pos", web.PosOf("git-url").String(), "../../testdata/index/valid/index.d/example.yaml:18:5"},
		{"item pos", web.ItemPos("depends-on", 1).String(), "../../testdata/index/valid/index.d/example.yaml:26:9"},
		{"library repository", run.Repository(), "runtime"},
		{"by name", len(idx.ByName("example/web")), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestBrokenExample(t *testing.T) {
	_, fs := loadLint(t, "../../testdata/index/broken", LintOptions{})
	want := []string{"yaml@4", "name-format@4", "git-url@5", "path-escape@6", "tag-format@7", "email@8", "prebuild@9",
		"unresolved-dependency@12", "duplicate-id@14", "git-url@17", "path-escape@19", "depends-on@21", "app-id-file@24",
		"git-url@26", "unknown-field@29", "cycle@46", "duplicate-image@48", "required@48"}
	if got := summary(fs); !slices.Equal(got, want) {
		t.Errorf("findings\n%v\nwant\n%v", got, want)
	}
	for _, f := range fs {
		if f.Pos.File == "" || f.Pos.Line == 0 {
			t.Errorf("finding without position: %v", f)
		}
	}
}

// TestSharedData loads the real index at three moments and checks the
// real problems found in each (see the report in the commit message).
func TestSharedData(t *testing.T) {
	tests := []struct {
		dir      string
		form     Form
		files    int
		entries  int
		skipped  int
		layered  int // entries in Layers (not on or after a cycle)
		findings []string
	}{
		{"2016-single-file", SingleFile, 1, 29, 1, 29, nil},
		{"2018-07", IndexD, 36, 285, 1, 285, []string{
			"index.d/openshift.yaml:589:11: error: openshift/base-centos7:latest: no entry builds openshift/base-centos7 in this index (unresolved-dependency)",
			`index.d/pipeline-images.yaml:132:5: warning: unknown field "build_context" (did you mean "build-context"? as written it is ignored) (unknown-field)`,
		}},
		{"2023-06", IndexD, 34, 205, 1, 88, []string{
			"index.d/centos.yaml:264:5: error: dependency cycle: centos/centos:7 -> centos/centos:7 (cycle)",
			"index.d/navidshaikh.yaml:35:17: error: openshift/jenkins-slave-base-centos7:latest: no entry builds openshift/jenkins-slave-base-centos7 in this index (unresolved-dependency)",
			"index.d/openshift.yaml:14:11: error: openshift/base-centos7:latest: no entry builds openshift/base-centos7 in this index (unresolved-dependency)",
			"index.d/pipeline-images.yaml:11:17: error: openshift/jenkins-slave-base-centos7:latest: no entry builds openshift/jenkins-slave-base-centos7 in this index (unresolved-dependency)",
			`index.d/pipeline-images.yaml:62:5: warning: unknown field "build_context" (did you mean "build-context"? as written it is ignored) (unknown-field)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			root := filepath.Join(sharedData, tt.dir)
			if _, err := os.Stat(root); err != nil {
				t.Skipf("shared data not here: %v", err)
			}
			idx, fs := loadLint(t, root, LintOptions{})
			if idx.Form != tt.form || len(idx.Files) != tt.files || len(idx.Entries) != tt.entries || len(idx.Skipped) != tt.skipped {
				t.Errorf("form %v files %d entries %d skipped %d; want %v %d %d %d",
					idx.Form, len(idx.Files), len(idx.Entries), len(idx.Skipped), tt.form, tt.files, tt.entries, tt.skipped)
			}
			var got []string
			for _, f := range fs {
				got = append(got, strings.TrimPrefix(f.String(), root+"/"))
			}
			if !slices.Equal(got, tt.findings) {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.findings, "\n"))
			}
			// Every file loads on its own too.
			for _, f := range idx.Files {
				if _, _, err := Load(context.Background(), f, LoadOptions{}); err != nil {
					t.Errorf("load %s: %v", f, err)
				}
			}
			g, _ := NewGraph(idx)
			n := 0
			layerOf := map[*Entry]int{}
			for i, l := range g.Layers() {
				n += len(l)
				for _, e := range l {
					layerOf[e] = i
					for _, p := range g.Parents(e) {
						if pl, ok := layerOf[p]; !ok || pl >= i {
							t.Errorf("%s in layer %d before its parent %s", e.Name(), i, p.Name())
						}
					}
				}
			}
			if n != tt.layered {
				t.Errorf("layers hold %d entries, want %d", n, tt.layered)
			}
		})
	}
}

func TestGraph(t *testing.T) {
	dir := writeIndex(t, map[string]string{"app.yaml": "Projects:\n" +
		entry("1", "base") + entry("2", "mid", "depends-on: app/base") + entry("3", "leaf", "depends-on: [app/mid, app/base]") +
		entry("4", "other")})
	idx, fs := loadLint(t, dir, LintOptions{})
	if len(fs) != 0 {
		t.Fatal(fs)
	}
	g, _ := NewGraph(idx)
	names := func(es []*Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, e.JobID)
		}
		return strings.Join(s, ",")
	}
	var layers []string
	for _, l := range g.Layers() {
		layers = append(layers, names(l))
	}
	base, _ := idx.Entry("app/base")
	leaf, _ := idx.Entry("app/leaf")
	tests := []struct{ name, got, want string }{
		{"layers", strings.Join(layers, " | "), "base,other | mid | leaf"},
		{"parents", names(g.Parents(leaf)), "mid,base"},
		{"children", names(g.Children(base)), "mid,leaf"},
		{"descendants", names(g.Descendants("app/base")), "mid,leaf"},
		{"descendants by image", names(g.Descendants("app/mid:latest")), "leaf"},
		{"dot edge", fmt.Sprint(strings.Contains(g.DOT(), `"app/base:latest" -> "app/mid:latest";`)), "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestLoadForms(t *testing.T) {
	single := t.TempDir()
	os.WriteFile(filepath.Join(single, "index.yml"), []byte("Projects:\n  - id          : 1\n    app-id      : a\n    job-id      : b\n"), 0o644)
	dotd := writeIndex(t, map[string]string{"a.yaml": "Projects:\n" + entry("1", "x", "app-id: a"), "b.yml": "Projects:\n" + entry("1", "y", "app-id: b"), "notes.txt": "x"})
	tests := []struct {
		name    string
		path    string
		form    Form
		entries int
		root    string
	}{
		{"single file dir", single, SingleFile, 1, single},
		{"single file", filepath.Join(single, "index.yml"), SingleFile, 1, single},
		{"repo root", dotd, IndexD, 2, dotd},
		{"index.d folder", filepath.Join(dotd, "index.d"), IndexD, 2, dotd},
		{"one index.d file", filepath.Join(dotd, "index.d", "b.yml"), IndexD, 1, dotd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, _, err := Load(context.Background(), tt.path, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if idx.Form != tt.form || len(idx.Entries) != tt.entries || idx.Root != tt.root {
				t.Errorf("form %v entries %d root %s", idx.Form, len(idx.Entries), idx.Root)
			}
		})
	}
	t.Run("no index", func(t *testing.T) {
		if _, _, err := Load(context.Background(), t.TempDir(), LoadOptions{}); err == nil {
			t.Error("no error for an empty folder")
		}
	})
}

func TestLoadBounds(t *testing.T) {
	t.Run("size cap", func(t *testing.T) {
		dir := writeIndex(t, map[string]string{"app.yaml": "Projects:\n" + entry("1", "web") + strings.Repeat("# padding\n", 200)})
		idx, fs, err := Load(context.Background(), dir, LoadOptions{MaxFileSize: 1024})
		if err != nil {
			t.Fatal(err)
		}
		if len(idx.Entries) != 0 || len(fs) != 1 || fs[0].Rule != "size" {
			t.Errorf("entries %d findings %v, want the file refused", len(idx.Entries), fs)
		}
	})
	t.Run("billion laughs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
		for i := 1; i < 10; i++ {
			fmt.Fprintf(&b, "a%d: &a%d [*a%[3]d,*a%[3]d,*a%[3]d,*a%[3]d,*a%[3]d,*a%[3]d,*a%[3]d,*a%[3]d,*a%[3]d]\n", i, i, i-1)
		}
		b.WriteString("Projects:\n  - id: 1\n    app-id: app\n    job-id: web\n    depends-on: *a9\n    notify-email: *a9\n  - *a9\n")
		dir := writeIndex(t, map[string]string{"app.yaml": b.String()})
		idx, fs, err := Load(context.Background(), dir, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The aliases are never expanded: each aliased list is a type
		// error on the spot, not a billion strings.
		if len(idx.Entries) != 1 || len(idx.Entries[0].DependsOn) != 0 {
			t.Fatalf("entries %d, depends-on %d", len(idx.Entries), len(idx.Entries[0].DependsOn))
		}
		if got := summary(fs); len(got) < 3 {
			t.Errorf("findings %v, want type errors for the aliased lists", got)
		}
	})
}

func TestRepoConfig(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		body     string
		check    func(*RepoConfig) string
		findings []string
	}{
		{"original template", "cccp.yml", "job-id: \nnulecule-file   : nulecule\ntest-skip       : True\ntest-script     :\nUpstreams       :\n        - ref           :\n          url           :\ndesired-tag     : null\n",
			func(c *RepoConfig) string { return fmt.Sprintf("%v %v %v", c.TestSkip, c.NuleculeFile, c.JobID == "") }, nil},
		{"string false", "cccp.yaml", "job-id: web\ntest-skip: 'False'\ntest-script: t.sh\n",
			func(c *RepoConfig) string { return fmt.Sprintf("%v %v %v", c.TestSkip, c.JobID, c.TestScript) }, nil},
		{"skip defaults off with script", ".cccp.yml", "job-id: web\ntest-script: t.sh\n",
			func(c *RepoConfig) string { return fmt.Sprint(c.TestSkip) }, nil},
		{"unknown key warns", ".cccp.yaml", "job-id: web\nfoo: bar\ntest-skip: maybe\n",
			func(c *RepoConfig) string { return c.JobID }, []string{"unknown-field@2", "type@3"}},
		{"test-network", "cccp.yaml", "job-id: web\ntest-network: yes\n",
			func(c *RepoConfig) string { return fmt.Sprint(c.TestNetwork) }, nil},
	}
	want := []string{"true nulecule true", "false web t.sh", "false", "web", "true"}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.body), 0o644)
			c, fs, err := LoadRepoConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.File != filepath.Join(dir, tt.file) {
				t.Errorf("file %q", c.File)
			}
			if got := tt.check(c); got != want[i] {
				t.Errorf("got %q, want %q", got, want[i])
			}
			if got := summary(fs); !slices.Equal(got, tt.findings) {
				t.Errorf("findings %v, want %v", got, tt.findings)
			}
		})
	}
	// A repository's cccp.yaml that points out of its folder is never read.
	for _, target := range []string{"/dev/zero", "/etc/passwd", "../outside.yaml"} {
		t.Run("symlink to "+target, func(t *testing.T) {
			parent := t.TempDir()
			os.WriteFile(filepath.Join(parent, "outside.yaml"), []byte("job-id: leaked\n"), 0o644)
			dir := filepath.Join(parent, "repo")
			os.Mkdir(dir, 0o755)
			os.Symlink(target, filepath.Join(dir, "cccp.yaml"))
			c, fs, err := LoadRepoConfig(dir)
			if err == nil || !strings.Contains(err.Error(), "cccp.yaml") {
				t.Fatalf("LoadRepoConfig = %+v, %v, %v; want an error naming cccp.yaml", c, fs, err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		c, fs, err := LoadRepoConfig(t.TempDir())
		if err != nil || c.File != "" || len(fs) != 0 || !c.TestSkip {
			t.Errorf("%+v %v %v", c, fs, err)
		}
	})
}

func TestFindingFormat(t *testing.T) {
	f := errorf(Pos{File: "index.d/a.yaml", Line: 3, Col: 5}, "git-url", "bad %s", "url")
	if got, want := f.String(), "index.d/a.yaml:3:5: error: bad url (git-url)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	b, _ := f.MarshalJSON()
	if got, want := string(b), `{"file":"index.d/a.yaml","line":3,"col":5,"severity":"error","rule":"git-url","message":"bad url"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

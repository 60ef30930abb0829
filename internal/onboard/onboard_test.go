package onboard

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/index"
)

// existingFile is in the style of the real index (testdata of the shared
// container-index at 2023-06), with comments that must survive.
const existingFile = `# Entries of the acme namespace.
Projects:
  - id: 1
    app-id: acme
    job-id: web
    git-url: https://github.com/acme/web
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@acme.example.org
    build-context: ./
    depends-on: null   # no parent
`

func newEntry() index.Entry {
	return index.Entry{
		AppID:       "acme",
		JobID:       "api",
		GitURL:      "https://github.com/acme/api",
		NotifyEmail: []string{"dev@acme.example.org"},
	}
}

func writeIndex(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "index.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(root, "index.d", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func load(t *testing.T, root string) *index.Index {
	t.Helper()
	idx, fs, err := index.Load(context.Background(), root, index.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if index.HasErrors(fs) {
		t.Fatalf("load findings: %v", fs)
	}
	return idx
}

func TestRenderEntryRoundTrips(t *testing.T) {
	tests := []struct {
		name  string
		entry index.Entry
	}{
		{"defaults", WithDefaults(newEntry())},
		{"lists and quoting", index.Entry{
			ID: "7", AppID: "acme", JobID: "db", GitURL: "git@github.com:acme/db.git", GitBranch: "release-1.0",
			GitPath: "images/db", TargetFile: "Dockerfile.centos", DesiredTag: "1.0", ExtraTags: []string{"1", "true"},
			NotifyEmail: []string{"a@acme.example.org", "b@acme.example.org"}, BuildContext: "./",
			DependsOn: []string{"acme/base:latest", "centos/centos:7"}, PrebuildScript: "hack/pre.sh", PrebuildContext: "hack",
		}},
		{"hostile text", index.Entry{ID: "x: y", AppID: "acme", JobID: "j", GitURL: "https://h/x #not-a-comment",
			GitBranch: "'quoted'", GitPath: "[a]", TargetFile: "{b}", DesiredTag: "null", BuildContext: "*alias",
			NotifyEmail: []string{"\"q\"@example.org"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, _, _ := appendTo(nil, tt.entry)
			entries, fs := index.ParseFile("index.d/acme.yaml", text)
			if len(fs) > 0 {
				t.Fatalf("findings parsing\n%s\n%v", text, fs)
			}
			if len(entries) != 1 {
				t.Fatalf("got %d entries from\n%s", len(entries), text)
			}
			got, want := entries[0], tt.entry
			for _, c := range []struct{ key, got, want string }{
				{"id", got.ID, want.ID}, {"app-id", got.AppID, want.AppID}, {"job-id", got.JobID, want.JobID},
				{"git-url", got.GitURL, want.GitURL}, {"git-branch", got.GitBranch, want.GitBranch},
				{"git-path", got.GitPath, want.GitPath}, {"target-file", got.TargetFile, want.TargetFile},
				{"desired-tag", got.DesiredTag, want.DesiredTag}, {"build-context", got.BuildContext, want.BuildContext},
				{"prebuild-script", got.PrebuildScript, want.PrebuildScript},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q\n%s", c.key, c.got, c.want, text)
				}
			}
			for _, c := range []struct {
				key       string
				got, want []string
			}{{"desired-tags", got.ExtraTags, want.ExtraTags}, {"notify-email", got.NotifyEmail, want.NotifyEmail}, {"depends-on", got.DependsOn, want.DependsOn}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s: got %q, want %q\n%s", c.key, c.got, c.want, text)
				}
			}
		})
	}
}

func TestRenderEntryStyle(t *testing.T) {
	got := string(RenderEntry(WithDefaults(index.Entry{ID: "2", AppID: "acme", JobID: "api", GitURL: "https://github.com/acme/api",
		NotifyEmail: []string{"dev@acme.example.org"}})))
	want := `  - id: 2
    app-id: acme
    job-id: api
    git-url: https://github.com/acme/api
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: dev@acme.example.org
    build-context: ./
    depends-on: null
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAppendLocal(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantFile string
		wantID   string
		wantN    int
	}{
		{"existing file keeps its bytes", map[string]string{"acme.yaml": existingFile}, "index.d/acme.yaml", "2", 2},
		{"no newline at end", map[string]string{"acme.yaml": strings.TrimSuffix(existingFile, "\n")}, "index.d/acme.yaml", "2", 2},
		{"new file", map[string]string{"other.yaml": strings.ReplaceAll(existingFile, "acme", "other")}, "index.d/acme.yaml", "1", 1},
		{"existing .yml file", map[string]string{"acme.yml": existingFile}, "index.d/acme.yml", "2", 2},
		{"empty index", nil, "index.d/acme.yaml", "1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeIndex(t, tt.files)
			old, _ := os.ReadFile(filepath.Join(root, tt.wantFile))
			file, err := AppendLocal(root, newEntry())
			if err != nil {
				t.Fatal(err)
			}
			if file != tt.wantFile {
				t.Errorf("file %q, want %q", file, tt.wantFile)
			}
			text, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(text, old) {
				t.Errorf("existing text changed:\n%s", text)
			}
			idx := load(t, root)
			if fs := index.Lint(idx, index.LintOptions{}); index.HasErrors(fs) {
				t.Errorf("lint after append: %v\n%s", fs, text)
			}
			var in []*index.Entry
			for _, e := range idx.Entries {
				if e.AppID == "acme" {
					in = append(in, e)
				}
			}
			if len(in) != tt.wantN {
				t.Fatalf("%d acme entries, want %d:\n%s", len(in), tt.wantN, text)
			}
			last := in[len(in)-1]
			if last.JobID != "api" || last.ID != tt.wantID || last.GitPath != "/" {
				t.Errorf("appended entry %+v", last)
			}
			left, _ := filepath.Glob(filepath.Join(root, "index.d", ".*.tmp"))
			if len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestAppendLocalRefusesInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*index.Entry)
		field  string
		rule   string
	}{
		{"option injection in git-url", func(e *index.Entry) { e.GitURL = "-uhttps://x" }, "git-url", "git-url"},
		{"ext transport", func(e *index.Entry) { e.GitURL = "ext::sh -c touch% /tmp/x" }, "git-url", "git-url"},
		{"duplicate image", func(e *index.Entry) { e.JobID = "web" }, "desired-tag", "duplicate-image"},
		{"bad job-id", func(e *index.Entry) { e.JobID = "Web App" }, "job-id", "name-format"},
		{"bad email", func(e *index.Entry) { e.NotifyEmail = []string{"not an address"} }, "notify-email", "email"},
		{"missing email", func(e *index.Entry) { e.NotifyEmail = nil }, "notify-email", "required"},
		{"path escape", func(e *index.Entry) { e.GitPath = "../../etc" }, "git-path", "path-escape"},
		{"bad tag", func(e *index.Entry) { e.DesiredTag = "-x" }, "desired-tag", "tag-format"},
		{"prebuild without context", func(e *index.Entry) { e.PrebuildScript = "pre.sh" }, "prebuild-script", "prebuild"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeIndex(t, map[string]string{"acme.yaml": existingFile})
			e := newEntry()
			tt.mutate(&e)
			_, err := AppendLocal(root, e)
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *InvalidError", err)
			}
			fs := ie.Fields[tt.field]
			if len(fs) == 0 {
				t.Fatalf("no finding for %s; fields %v other %v", tt.field, ie.Fields, ie.Other)
			}
			if fs[0].Rule != tt.rule {
				t.Errorf("rule %q, want %q (%v)", fs[0].Rule, tt.rule, fs)
			}
			text, _ := os.ReadFile(filepath.Join(root, "index.d", "acme.yaml"))
			if string(text) != existingFile {
				t.Errorf("file changed on refusal:\n%s", text)
			}
		})
	}
}

func TestValidateOnlyReportsTheNewEntry(t *testing.T) {
	// The existing file has its own problem (a bad email); Validate must
	// not blame the new entry for it.
	bad := strings.Replace(existingFile, "ops@acme.example.org", "nobody", 1)
	root := writeIndex(t, map[string]string{"acme.yaml": bad})
	idx, _, err := index.Load(context.Background(), root, index.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fs := Validate(idx, newEntry()); len(fs) != 0 {
		t.Errorf("findings for a valid entry: %v", fs)
	}
	e := newEntry()
	e.DependsOn = []string{"acme/missing:latest"}
	fs := Validate(idx, e)
	if len(fs) == 0 {
		t.Fatal("no finding for an unresolved depends-on")
	}
	for _, f := range fs {
		if f.Pos.Line < 15 {
			t.Errorf("finding before the new entry: %v", f)
		}
	}
}

type recordingQueuer struct{ got []string }

func (q *recordingQueuer) QueueFirst(_ context.Context, e index.Entry, actor string) (string, error) {
	q.got = append(q.got, e.Key()+"@"+e.GitBranch+" by "+actor)
	return "42", nil
}

func TestLocalSubmitQueuesFirstBuild(t *testing.T) {
	root := writeIndex(t, map[string]string{"acme.yaml": existingFile})
	q := &recordingQueuer{}
	l := &Local{Root: root, Queue: q}
	out, err := l.Submit(context.Background(), newEntry(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if out.Project != "acme/api:latest" || out.File != "index.d/acme.yaml" || out.RunID != "42" {
		t.Errorf("outcome %+v", out)
	}
	if want := []string{"acme/api:latest@master by admin"}; !slices.Equal(q.got, want) {
		t.Errorf("queued %v, want %v", q.got, want)
	}
	// A second submit of the same entry is now a duplicate and queues nothing.
	if _, err := l.Submit(context.Background(), newEntry(), "admin"); err == nil {
		t.Error("second submit of the same entry accepted")
	}
	if len(q.got) != 1 {
		t.Errorf("queued %v after a refused submit", q.got)
	}
	// Another entry of the same name with its own desired-tag (built from
	// another branch, as centos/centos builds :7 and :6) is a project of
	// its own.
	e := newEntry()
	e.GitBranch, e.DesiredTag = "release-1", "1"
	out, err = l.Submit(context.Background(), e, "admin")
	if err != nil {
		t.Fatalf("second tag of acme/api refused: %v", err)
	}
	if out.Project != "acme/api:1" {
		t.Errorf("outcome %+v", out)
	}
	if want := []string{"acme/api:latest@master by admin", "acme/api:1@release-1 by admin"}; !slices.Equal(q.got, want) {
		t.Errorf("queued %v, want %v", q.got, want)
	}
}

type recordingPR struct {
	calls []string
	files map[string][]byte
}

func (p *recordingPR) OpenPullRequest(_ context.Context, repo, base, branch, title, body string, files map[string][]byte) (string, error) {
	p.calls = append(p.calls, repo+"@"+base+" "+branch+": "+title)
	p.files = files
	return "https://github.com/" + repo + "/pull/9", nil
}

func TestForgeSubmitOpensPullRequest(t *testing.T) {
	root := writeIndex(t, map[string]string{"acme.yaml": existingFile})
	pr := &recordingPR{}
	f := &Forge{Root: root, Repo: "org/container-index", Base: "master", PR: pr}
	out, err := f.Submit(context.Background(), newEntry(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if out.Project != "acme/api:latest" || out.PullRequest != "https://github.com/org/container-index/pull/9" {
		t.Errorf("outcome %+v", out)
	}
	if want := []string{"org/container-index@master cccp/onboard-acme-api-latest: Add acme/api:latest"}; !slices.Equal(pr.calls, want) {
		t.Errorf("calls %v, want %v", pr.calls, want)
	}
	text := pr.files["index.d/acme.yaml"]
	if !bytes.HasPrefix(text, []byte(existingFile)) || !bytes.Contains(text, []byte("job-id: api")) {
		t.Errorf("proposed file:\n%s", text)
	}
	// The local checkout is not touched in forge mode.
	if now, _ := os.ReadFile(filepath.Join(root, "index.d", "acme.yaml")); string(now) != existingFile {
		t.Error("forge mode wrote the local file")
	}
	e := newEntry()
	e.GitURL = "ftp://x"
	if _, err := f.Submit(context.Background(), e, "admin"); err == nil || len(pr.calls) != 1 {
		t.Errorf("invalid entry: err %v, calls %v", err, pr.calls)
	}
}

func TestRefSafe(t *testing.T) {
	tests := []struct{ name, tag, want string }{
		{"plain", "latest", "latest"},
		{"version", "1.2.3", "1.2.3"},
		{"double dot", "1..2", "1.2"},
		{"triple dot", "a...b", "a.b"},
		{"trailing dot", "v1.", "v1"},
		{"lock suffix", "x.lock", "x_lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refSafe(tt.tag); got != tt.want {
				t.Errorf("refSafe(%q) = %q, want %q", tt.tag, got, tt.want)
			}
		})
	}
}

// singleFile is a cccp-index.yaml as people write it: comments, their own
// key order and `key  : value` spacing, all to be kept byte for byte.
const singleFile = `# The container index of acme.
Projects:
  # the API
  - id        : 1
    app-id    : acme
    job-id    : web
    git-url   : https://github.com/acme/web
    git-branch: master
    git-path  : /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@acme.example.org
    depends-on: null
`

// TestOnboardSingleFile: onboarding into a single-file cccp-index.yaml
// (locally and by a forge pull request) appends the entry and keeps the
// rest of the file byte for byte. Before, both refused a single-file
// index (ErrSingleFile).
func TestOnboardSingleFile(t *testing.T) {
	for _, name := range []string{"cccp-index.yaml", "cccp-index.yml"} {
		t.Run(name+" local", func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, name), []byte(singleFile), 0o644); err != nil {
				t.Fatal(err)
			}
			file, err := AppendLocal(root, newEntry())
			if err != nil {
				t.Fatal(err)
			}
			if file != name {
				t.Errorf("wrote %q, want %q", file, name)
			}
			text, _ := os.ReadFile(filepath.Join(root, name))
			if !bytes.HasPrefix(text, []byte(singleFile)) {
				t.Errorf("existing text changed:\n%s", text)
			}
			idx := load(t, root)
			if idx.Form != index.SingleFile || len(idx.Entries) != 2 || idx.Entries[1].JobID != "api" || idx.Entries[1].ID != "2" {
				t.Errorf("after onboarding: form %v, entries %d\n%s", idx.Form, len(idx.Entries), text)
			}
		})
	}
	t.Run("forge pull request", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "cccp-index.yaml"), []byte(singleFile), 0o644); err != nil {
			t.Fatal(err)
		}
		pr := &recordingPR{}
		f := &Forge{Root: root, Repo: "org/container-index", Base: "master", PR: pr}
		if _, err := f.Submit(context.Background(), newEntry(), "admin"); err != nil {
			t.Fatal(err)
		}
		text := pr.files["cccp-index.yaml"]
		if !bytes.HasPrefix(text, []byte(singleFile)) || !bytes.Contains(text, []byte("job-id: api")) {
			t.Errorf("proposed file %v:\n%s", slices.Collect(maps.Keys(pr.files)), text)
		}
	})
	t.Run("a file not ending with its list is refused", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "cccp-index.yaml"), []byte(singleFile+"Other: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := AppendLocal(root, newEntry()); err == nil || !strings.Contains(err.Error(), "Projects list") {
			t.Errorf("err = %v", err)
		}
	})
}

// Package onboard adds a project to the container index: it checks a new
// entry with the same linter as `cccp index lint` (together with the
// existing index, so duplicates and dependencies are caught), renders it as
// a YAML block in the index's own style, and either appends it to the local
// index (Local) or proposes it as a pull request on the index repository
// (Forge). The web form and `cccp index add` share it.
package onboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cccp-project/cccp/internal/index"
)

// ErrSingleFile was returned when the index is in the single-file
// form, which onboarding does not write.
var ErrSingleFile = errors.New("the index is a single index.yml; onboarding writes index.d/<app-id>.yaml files")

// InvalidError refuses an entry that has lint errors. Fields holds the
// findings about each entry key ("git-url", ...); Other the rest.
type InvalidError struct {
	Findings []index.Finding
	Fields   map[string][]index.Finding
	Other    []index.Finding
}

func (e *InvalidError) Error() string {
	var msgs []string
	for _, f := range e.Findings {
		if isError(f) {
			msgs = append(msgs, f.Message)
		}
	}
	return "invalid entry: " + strings.Join(msgs, "; ")
}

func isError(f index.Finding) bool { return f.Severity == index.Error }

// Outcome says what onboarding did.
type Outcome struct {
	Project     string // the entry's key, app-id/job-id:desired-tag (defaults filled in): what its runs are stored under
	File        string // the index file written (local mode), relative to the index root
	RunID       string // the first build queued (local mode)
	PullRequest string // URL of the pull request opened (forge mode)
}

// WithDefaults returns e with the index defaults filled in where a field is
// empty, as the loader does, and "/" (the repository root) for git-path.
func WithDefaults(e index.Entry) index.Entry {
	def := func(s *string, v string) {
		if strings.TrimSpace(*s) == "" {
			*s = v
		}
	}
	def(&e.GitBranch, index.DefaultGitBranch)
	def(&e.GitPath, "/")
	def(&e.TargetFile, index.DefaultTargetFile)
	def(&e.DesiredTag, index.DefaultDesiredTag)
	def(&e.BuildContext, index.DefaultBuildContext)
	return e
}

// keyOf is the key e will have in the index, app-id/job-id:desired-tag,
// with the default tag when none is given.
func keyOf(e index.Entry) string {
	e = WithDefaults(e)
	return e.Key()
}

// fileFor is the index file an entry of appID goes to: the existing one
// for that app-id (.yaml or .yml), else index.d/<app-id>.yaml under root.
func fileFor(existing *index.Index, appID string) string {
	if existing != nil {
		for _, f := range existing.Files {
			b := filepath.Base(f)
			if b == appID+".yaml" || b == appID+".yml" {
				return f
			}
		}
	}
	root := ""
	if existing != nil {
		root = existing.Root
	}
	return filepath.Join(root, "index.d", appID+".yaml")
}

// nextID is one more than the highest numeric id in the entries of file.
func nextID(entries []*index.Entry, file string) string {
	max := 0
	for _, e := range entries {
		if e.Pos.File != file {
			continue
		}
		if n, err := strconv.Atoi(e.ID); err == nil && n > max {
			max = n
		}
	}
	return strconv.Itoa(max + 1)
}

// plan is where and how an entry would be written.
type plan struct {
	file     string   // the index file, as named in the existing index
	old      []byte   // its current text (nil when new)
	text     []byte   // its text with the entry appended
	start    int      // 1-based line of the entry's first line in text
	keys     []string // key of each line of the entry's block
	entry    index.Entry
	findings []index.Finding
}

func prepare(existing *index.Index, e index.Entry) (*plan, error) {
	e = WithDefaults(e)
	p := &plan{file: fileFor(existing, e.AppID)}
	form := index.IndexD
	if existing != nil && existing.Form == index.SingleFile {
		if len(existing.Files) != 1 {
			return nil, ErrSingleFile
		}
		// The entry is appended to the one file; the rest of it is kept
		// byte for byte.
		p.file, form = existing.Files[0], index.SingleFile
	}
	old, err := os.ReadFile(p.file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", p.file, err)
	}
	p.old = old
	var others []*index.Entry
	if existing != nil {
		for _, x := range existing.Entries {
			if x.Pos.File != p.file {
				others = append(others, x)
			}
		}
	}
	inFile, _ := index.ParseFile(p.file, old)
	if e.ID == "" {
		e.ID = nextID(inFile, p.file)
	}
	p.entry = e
	p.text, p.start, p.keys = appendTo(old, e)

	// Lint the whole index as it would be, and keep what concerns the new
	// entry: findings in its file from its first line on.
	parsed, pf := index.ParseFile(p.file, p.text)
	if len(parsed) != len(inFile)+1 {
		return nil, fmt.Errorf("%s: the entry cannot be appended: the file does not end with its Projects list", p.file)
	}
	root := ""
	if existing != nil {
		root = existing.Root
	}
	idx := index.NewIndex(root, form, append(others, parsed...))
	all := append(pf, index.Lint(idx, index.LintOptions{AllowFile: allowFile(e.GitURL)})...)
	for _, f := range all {
		if f.Pos.File == p.file && f.Pos.Line >= p.start {
			p.findings = append(p.findings, f)
		}
	}
	index.SortFindings(p.findings)
	// Findings name the file relative to the index root: the server's
	// folders are nobody's business.
	for i := range p.findings {
		if rel, err := filepath.Rel(root, p.findings[i].Pos.File); err == nil && root != "" {
			p.findings[i].Pos.File = filepath.ToSlash(rel)
		}
	}
	return p, nil
}

// allowFile is false: onboarding never accepts file:// repositories.
func allowFile(string) bool { return false }

func (p *plan) invalid() *InvalidError {
	if !index.HasErrors(p.findings) {
		return nil
	}
	ie := &InvalidError{Findings: p.findings, Fields: map[string][]index.Finding{}}
	for _, f := range p.findings {
		if key := p.keyAt(f.Pos.Line); key != "" {
			ie.Fields[key] = append(ie.Fields[key], f)
		} else if key := keyInMessage(f.Message); key != "" {
			ie.Fields[key] = append(ie.Fields[key], f)
		} else {
			ie.Other = append(ie.Other, f)
		}
	}
	return ie
}

func (p *plan) keyAt(line int) string {
	i := line - p.start
	if i < 0 || i >= len(p.keys) {
		return ""
	}
	return p.keys[i]
}

// keyInMessage finds the field a "missing required field X" finding names.
func keyInMessage(msg string) string {
	if k, ok := strings.CutPrefix(msg, "missing required field "); ok {
		return k
	}
	return ""
}

// Validate lints e as it would be appended to the existing index (nil: an
// empty one) and returns the findings about it, positioned in the file it
// would be written to.
func Validate(existing *index.Index, e index.Entry) []index.Finding {
	p, err := prepare(existing, e)
	if err != nil {
		return []index.Finding{{Severity: index.Error, Rule: "index", Message: err.Error()}}
	}
	return p.findings
}

// Check is Validate as an error: nil, or an *InvalidError with the
// findings sorted by field.
func Check(existing *index.Index, e index.Entry) error {
	p, err := prepare(existing, e)
	if err != nil {
		return err
	}
	if ie := p.invalid(); ie != nil {
		return ie
	}
	return nil
}

// RenderEntry renders e as one item of a `Projects:` list, in the index's
// style: two-space indent, every field written, lists only when there are
// several values, `depends-on: null` when there are none.
func RenderEntry(e index.Entry) []byte {
	b, _ := renderEntry(e)
	return b
}

func renderEntry(e index.Entry) ([]byte, []string) {
	var b bytes.Buffer
	var keys []string
	first := true
	line := func(key, text string) {
		prefix := "    "
		if first {
			prefix, first = "  - ", false
		}
		b.WriteString(prefix + text + "\n")
		keys = append(keys, key)
	}
	field := func(key, v string) { line(key, key+": "+scalar(v)) }
	list := func(key string, vs []string, none string) {
		switch len(vs) {
		case 0:
			if none != "" {
				line(key, key+": "+none)
			}
		case 1:
			field(key, vs[0])
		default:
			line(key, key+":")
			for _, v := range vs {
				b.WriteString("      - " + scalar(v) + "\n")
				keys = append(keys, key)
			}
		}
	}
	if e.ID != "" {
		if _, err := strconv.Atoi(e.ID); err == nil {
			line("id", "id: "+e.ID)
		} else {
			field("id", e.ID)
		}
	}
	field("app-id", e.AppID)
	field("job-id", e.JobID)
	field("git-url", e.GitURL)
	field("git-branch", e.GitBranch)
	field("git-path", e.GitPath)
	field("target-file", e.TargetFile)
	field("desired-tag", e.DesiredTag)
	if len(e.ExtraTags) > 0 {
		line("desired-tags", "desired-tags:")
		for _, t := range e.ExtraTags {
			b.WriteString("      - " + scalar(t) + "\n")
			keys = append(keys, "desired-tags")
		}
	}
	list("notify-email", e.NotifyEmail, "")
	if len(e.NotifyEmail) == 0 {
		field("notify-email", "")
	}
	field("build-context", e.BuildContext)
	list("depends-on", e.DependsOn, "null")
	if e.PrebuildScript != "" || e.PrebuildContext != "" {
		field("prebuild-script", e.PrebuildScript)
		field("prebuild-context", e.PrebuildContext)
	}
	return b.Bytes(), keys
}

// scalar writes s as a YAML scalar: plain when YAML reads it back as the
// same string, double-quoted otherwise.
func scalar(s string) string {
	if s != "" && !strings.ContainsAny(s, "\n\r\t") && strings.TrimSpace(s) == s {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("k: "+s), &n); err == nil && len(n.Content) == 1 && len(n.Content[0].Content) == 2 {
			v := n.Content[0].Content[1]
			if v.Tag == "!!str" && v.Value == s {
				return s
			}
		}
	}
	return strconv.Quote(s)
}

// appendTo returns src with e appended to its Projects list (a new file
// when src is empty), the 1-based line where the entry starts, and the key
// of each of its lines. The existing text is kept byte for byte.
func appendTo(src []byte, e index.Entry) ([]byte, int, []string) {
	block, keys := renderEntry(e)
	out := slices.Clone(src)
	if len(bytes.TrimSpace(out)) == 0 {
		out = []byte("Projects:\n")
	} else {
		if out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		if !bytes.HasSuffix(out, []byte("\n\n")) && strings.TrimSpace(string(out)) != "Projects:" {
			out = append(out, '\n')
		}
	}
	start := bytes.Count(out, []byte("\n")) + 1
	out = append(out, block...)
	return out, start, keys
}

// AppendLocal checks e against the index at indexRoot and appends it to
// index.d/<app-id>.yaml there (created with a `Projects:` list when
// missing). The existing text and comments are kept byte for byte; the file
// is replaced through a temporary file and a rename, so an error leaves it
// as it was. It returns the file written, relative to indexRoot.
func AppendLocal(indexRoot string, e index.Entry) (string, error) {
	existing, err := loadOrEmpty(context.Background(), indexRoot)
	if err != nil {
		return "", err
	}
	return appendLocal(existing, e)
}

func appendLocal(existing *index.Index, e index.Entry) (string, error) {
	p, err := prepare(existing, e)
	if err != nil {
		return "", fmt.Errorf("onboard %s: %w", keyOf(e), err)
	}
	if ie := p.invalid(); ie != nil {
		return "", ie
	}
	if err := writeFile(p.file, p.text); err != nil {
		return "", fmt.Errorf("onboard %s: %w", p.entry.Key(), err)
	}
	rel, err := filepath.Rel(existing.Root, p.file)
	if err != nil {
		rel = p.file
	}
	return rel, nil
}

// writeFile replaces name with data through a temporary file in the same
// folder, keeping the old file's mode.
func writeFile(name string, data []byte) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(name); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

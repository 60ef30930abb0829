package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"gopkg.in/yaml.v3"
)

// ErrNoIndex is returned by Load when the path holds neither an `index.d`
// folder nor an `index.yml` file.
var ErrNoIndex = errors.New("no container index (index.d/, index.yml or cccp-index.yaml) found")

// singleFileNames are the names of a single-file index, in the order a
// folder is searched: the original index.yml, and cccp-index.yaml at a
// repository's root (what developers open pull requests to).
var singleFileNames = []string{"index.yml", "index.yaml", "cccp-index.yaml", "cccp-index.yml"}

// DefaultMaxFileSize is the largest index or cccp.yaml file read; bigger
// files are refused with a "size" finding.
const DefaultMaxFileSize = 8 << 20

// Form is the layout an index was read from.
type Form int

const (
	// IndexD is a folder `index.d/` of `<app-id>.yaml` files.
	IndexD Form = iota + 1
	// SingleFile is the older single `index.yml`, or `cccp-index.yaml`.
	SingleFile
)

func (f Form) String() string {
	switch f {
	case IndexD:
		return "index.d"
	case SingleFile:
		return "index.yml"
	}
	return "unknown"
}

// LoadOptions tune Load. The zero value is ready to use.
type LoadOptions struct {
	// MaxFileSize bounds each file read; default DefaultMaxFileSize.
	MaxFileSize int64
}

// Index is a loaded container index.
type Index struct {
	// Root is the index repository's root folder (the parent of
	// `index.d/`, or the folder of `index.yml`).
	Root string
	Form Form
	// Entries in file order, then in order within each file.
	Entries []*Entry
	// Files read, in order, as paths joined to what Load was given.
	Files []string
	// Skipped are the format's own templates, which the original pipeline
	// never built: the file `index.d/index_template.y*ml` and, in the
	// single-file form, the `id: default` entry with an empty app-id.
	Skipped []Pos

	byName map[string][]*Entry
	appIDs map[string]bool
}

// Load reads the index at path: an index repository root (holding
// `index.d/` or `index.yml`), an `index.d` folder, or one index file. It
// returns the findings of parsing (YAML syntax, field types, unknown fields,
// size); an error only when nothing could be read at all. Entries that have
// problems are still returned, with what could be parsed, so Lint can report
// more about them.
func Load(ctx context.Context, path string, opts LoadOptions) (*Index, []Finding, error) {
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	idx, files, err := locate(path)
	if err != nil {
		return nil, nil, err
	}
	var findings []Finding
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", path, err)
		}
		data, ff, err := readBounded(f, opts.MaxFileSize)
		if err != nil {
			return nil, nil, fmt.Errorf("load index: %w", err)
		}
		idx.Files = append(idx.Files, f)
		findings = append(findings, ff...)
		if data == nil {
			continue
		}
		if idx.Form == IndexD && isTemplateFile(f) {
			idx.Skipped = append(idx.Skipped, Pos{File: f})
			continue
		}
		entries, skipped, pf := parseIndexFile(f, data)
		findings = append(findings, pf...)
		idx.Skipped = append(idx.Skipped, skipped...)
		idx.Entries = append(idx.Entries, entries...)
	}
	idx.reindex()
	return idx, findings, nil
}

// ParseFile parses one index file's bytes as if read from name. It never
// fails: problems are findings. Used by fuzzing and by change detection.
func ParseFile(name string, data []byte) ([]*Entry, []Finding) {
	entries, _, fs := parseIndexFile(name, data)
	return entries, fs
}

// NewIndex builds an Index from entries, for tests and tools that make
// entries in code.
func NewIndex(root string, form Form, entries []*Entry) *Index {
	idx := &Index{Root: root, Form: form, Entries: entries}
	idx.reindex()
	return idx
}

func (idx *Index) reindex() {
	idx.byName = make(map[string][]*Entry, len(idx.Entries))
	idx.appIDs = map[string]bool{}
	for _, e := range idx.Entries {
		idx.byName[e.Name()] = append(idx.byName[e.Name()], e)
		if e.AppID != "" {
			idx.appIDs[e.AppID] = true
		}
	}
}

// ByName returns the entries named `app-id/job-id` (one per delivered tag
// set; a name often has several entries with different desired-tags).
func (idx *Index) ByName(name string) []*Entry { return idx.byName[name] }

// Entry finds one entry: `app-id/job-id:tag` names the entry delivering
// that tag, plain `app-id/job-id` the first entry of that name (a name
// often has several entries, one per desired-tag; see ByName).
func (idx *Index) Entry(name string) (*Entry, bool) {
	if strings.Contains(name, ":") {
		return idx.ByImage(name)
	}
	if es := idx.byName[name]; len(es) > 0 {
		return es[0], true
	}
	return nil, false
}

// HasAppID reports whether some entry uses the app-id (namespace).
func (idx *Index) HasAppID(appID string) bool { return idx.appIDs[appID] }

// ByImage returns the entry that delivers the image reference ref
// (`app-id/job-id[:tag]`, `job-id[:tag]` for the library namespace; a
// registry host is ignored; the tag defaults to latest).
func (idx *Index) ByImage(ref string) (*Entry, bool) {
	r, err := parseImageRef(ref)
	if err != nil {
		return nil, false
	}
	return idx.resolve(r)
}

func (idx *Index) resolve(r imageRef) (*Entry, bool) {
	for _, e := range idx.byName[r.name] {
		if r.tag == "" || slices.Contains(e.Tags(), r.tag) {
			return e, true
		}
	}
	return nil, false
}

// imageRef is a depends-on item split the way the index means it.
type imageRef struct {
	host string // as written; "" when none
	name string // app-id/job-id; library/x for a one-part path
	tag  string // "" for a digest-only reference
}

func parseImageRef(s string) (imageRef, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return imageRef{}, err
	}
	var r imageRef
	if i := strings.IndexByte(s, '/'); i > 0 {
		first := s[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			r.host = first
		}
	}
	r.name = reference.Path(named)
	switch t := named.(type) {
	case reference.Tagged:
		r.tag = t.Tag()
	case reference.Digested:
	default:
		r.tag = DefaultDesiredTag
	}
	return r, nil
}

// locate decides the form and the files to read.
func locate(path string) (*Index, []string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load index: %w", err)
	}
	if !st.IsDir() {
		base := filepath.Base(path)
		if slices.Contains(singleFileNames, base) {
			return &Index{Root: filepath.Dir(path), Form: SingleFile}, []string{path}, nil
		}
		dir := filepath.Dir(path)
		root := dir
		if filepath.Base(dir) == "index.d" {
			root = filepath.Dir(dir)
		}
		return &Index{Root: root, Form: IndexD}, []string{path}, nil
	}
	dir, root := path, filepath.Dir(path)
	if st, err := os.Stat(filepath.Join(path, "index.d")); err == nil && st.IsDir() {
		dir, root = filepath.Join(path, "index.d"), path
	} else if filepath.Base(path) != "index.d" {
		for _, n := range singleFileNames {
			f := filepath.Join(path, n)
			if _, err := os.Stat(f); err == nil {
				return &Index{Root: path, Form: SingleFile}, []string{f}, nil
			}
		}
		return nil, nil, fmt.Errorf("load %s: %w", path, ErrNoIndex)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load index: %w", err)
	}
	var files []string
	for _, de := range des {
		n := de.Name()
		if de.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		files = append(files, filepath.Join(dir, n))
	}
	return &Index{Root: root, Form: IndexD}, files, nil
}

func isTemplateFile(f string) bool {
	return strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".yaml"), ".yml") == "index_template"
}

// appIDOfFile is the app-id an index.d file name stands for: the base name
// without every .yaml/.yml suffix (`status-api.yml.yml` existed).
func appIDOfFile(f string) string {
	b := filepath.Base(f)
	for {
		switch {
		case strings.HasSuffix(b, ".yaml"):
			b = strings.TrimSuffix(b, ".yaml")
		case strings.HasSuffix(b, ".yml"):
			b = strings.TrimSuffix(b, ".yml")
		default:
			return b
		}
	}
}

// readBounded reads at most max bytes of f; a bigger file gives a finding
// and nil data.
func readBounded(f string, max int64) ([]byte, []Finding, error) {
	fh, err := os.Open(f)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", f, err)
	}
	if int64(len(data)) > max {
		return nil, []Finding{errorf(Pos{File: f}, "size", "file is larger than %d bytes; not read", max)}, nil
	}
	return data, nil, nil
}

// parserProblems are yaml.v3's parser (as opposed to scanner) messages.
var parserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlFinding turns a yaml.v3 error into a positioned finding.
func yamlFinding(file string, err error) Finding {
	msg := err.Error()
	p := Pos{File: file}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		// yaml.v3 reports parser (not scanner) errors with the 0-based
		// line of the construct being parsed; make it 1-based.
		if slices.Contains(parserProblems, msg) {
			p.Line++
			msg += " (in the construct starting here)"
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return errorf(p, "yaml", "%s", msg)
}

// parseYAML decodes the first document into a node tree. Aliases are kept
// as alias nodes (never expanded), so alias bombs cost nothing here; every
// reader of the tree follows aliases through deref, one node at a time.
func parseYAML(file string, data []byte) (*yaml.Node, []Finding) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []Finding{yamlFinding(file, err)}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return deref(doc.Content[0]), nil
	}
	return nil, nil
}

// maxAliasDepth bounds alias chains followed by deref.
const maxAliasDepth = 16

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == maxAliasDepth {
			return nil
		}
		n = n.Alias
	}
	return n
}

func posOf(file string, n *yaml.Node) Pos { return Pos{File: file, Line: n.Line, Col: n.Column} }

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "an alias loop"
}

// stringFields maps the scalar keys of an entry to their field.
func stringFields(e *Entry) map[string]*string {
	return map[string]*string{
		"id":                &e.ID,
		"app-id":            &e.AppID,
		"job-id":            &e.JobID,
		"git-url":           &e.GitURL,
		"git-branch":        &e.GitBranch,
		"git-path":          &e.GitPath,
		"target-file":       &e.TargetFile,
		"desired-tag":       &e.DesiredTag,
		"build-context":     &e.BuildContext,
		"prebuild-script":   &e.PrebuildScript,
		"prebuild-context":  &e.PrebuildContext,
		"notify-on-success": &e.NotifyOnSuccess,
	}
}

// listFields are the keys that take a string or a list of strings.
var listFields = map[string]bool{"depends-on": true, "notify-email": true, "desired-tags": true}

// KnownFields is every key an index entry may have.
var KnownFields = []string{
	"id", "app-id", "job-id", "git-url", "git-branch", "git-path", "target-file",
	"desired-tag", "desired-tags", "notify-email", "build-context", "depends-on",
	"prebuild-script", "prebuild-context", "notify-on-success",
}

func parseIndexFile(file string, data []byte) (entries []*Entry, skipped []Pos, fs []Finding) {
	root, fs := parseYAML(file, data)
	if root == nil || isNull(root) {
		return nil, nil, fs
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, append(fs, errorf(posOf(file, root), "type", "an index file must be a mapping with a Projects list, got %s", kindName(root)))
	}
	var projects *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "Projects" {
			projects = deref(v)
			if projects == nil {
				projects = v
			}
			continue
		}
		fs = append(fs, warnf(posOf(file, k), "unknown-field", "unknown top-level key %q (only Projects is read)", k.Value))
	}
	if projects == nil {
		return nil, nil, append(fs, errorf(posOf(file, root), "required", "no Projects list"))
	}
	if isNull(projects) {
		return nil, nil, fs
	}
	if projects.Kind != yaml.SequenceNode {
		return nil, nil, append(fs, errorf(posOf(file, projects), "type", "Projects must be a list, got %s", kindName(projects)))
	}
	for _, item := range projects.Content {
		n := deref(item)
		if n == nil || n.Kind != yaml.MappingNode {
			if n == nil {
				n = item
			}
			fs = append(fs, errorf(posOf(file, item), "type", "a project must be a mapping, got %s", kindName(n)))
			continue
		}
		e, ef := parseEntry(file, n)
		fs = append(fs, ef...)
		if e.ID == "default" && e.AppID == "" && e.JobID == "" {
			skipped = append(skipped, e.Pos)
			continue
		}
		entries = append(entries, e)
	}
	return entries, skipped, fs
}

func parseEntry(file string, n *yaml.Node) (*Entry, []Finding) {
	e := &Entry{Pos: posOf(file, n), FieldPos: map[string]Pos{}}
	var fs []Finding
	scalars := stringFields(e)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, raw := n.Content[i], n.Content[i+1]
		key := k.Value
		kp := posOf(file, k)
		if k.Kind != yaml.ScalarNode {
			fs = append(fs, errorf(kp, "type", "a key must be a string, got %s", kindName(k)))
			continue
		}
		if prev, dup := e.FieldPos[key]; dup {
			fs = append(fs, warnf(kp, "duplicate-key", "%q is set twice (first at line %d); the last value wins", key, prev.Line))
		}
		v := deref(raw)
		if v == nil {
			fs = append(fs, errorf(kp, "yaml", "%q: alias chain too deep", key))
			continue
		}
		if dst, ok := scalars[key]; ok {
			e.FieldPos[key] = kp
			*dst = ""
			switch {
			case isNull(v):
			case v.Kind == yaml.ScalarNode:
				*dst = v.Value
			default:
				fs = append(fs, errorf(posOf(file, raw), "type", "%s must be a string, got %s", key, kindName(v)))
			}
			continue
		}
		if listFields[key] {
			e.FieldPos[key] = kp
			items, ps, f := stringList(file, key, raw, v)
			fs = append(fs, f...)
			switch key {
			case "depends-on":
				e.DependsOn, e.itemPos.dependsOn = items, ps
			case "notify-email":
				e.NotifyEmail, e.itemPos.notifyEmail = items, ps
			case "desired-tags":
				e.ExtraTags, e.itemPos.extraTags = items, ps
			}
			continue
		}
		msg := fmt.Sprintf("unknown field %q", key)
		if alt := strings.ReplaceAll(strings.ToLower(key), "_", "-"); alt != key && slices.Contains(KnownFields, alt) {
			msg += fmt.Sprintf(" (did you mean %q? as written it is ignored)", alt)
		}
		fs = append(fs, warnf(kp, "unknown-field", "%s", msg))
	}
	if GitCredentials(e.GitURL) {
		// Dropped here, at the door: an entry is stored with every run and
		// shown on the dashboard and in the API.
		e.GitURL = redactGitURL(e.GitURL)
		fs = append(fs, errorf(e.PosOf("git-url"), "git-url", "git-url must not carry credentials (a token or user:password before '@'); "+
			"cccp dropped them: %s", e.GitURL))
	}
	if e.GitBranch == "" {
		e.GitBranch = DefaultGitBranch
	}
	if e.TargetFile == "" {
		e.TargetFile = DefaultTargetFile
	}
	if e.DesiredTag == "" {
		e.DesiredTag = DefaultDesiredTag
	}
	if e.BuildContext == "" {
		e.BuildContext = DefaultBuildContext
	}
	return e, fs
}

// stringList reads null, a string (split at commas, as some real files
// write several values in one string), or a list of strings.
func stringList(file, key string, raw, v *yaml.Node) ([]string, []Pos, []Finding) {
	var items []string
	var ps []Pos
	var fs []Finding
	add := func(n *yaml.Node) {
		for _, part := range strings.Split(n.Value, ",") {
			if part = strings.TrimSpace(part); part != "" {
				items = append(items, part)
				ps = append(ps, posOf(file, n))
			}
		}
	}
	switch {
	case isNull(v):
	case v.Kind == yaml.ScalarNode:
		add(v)
	case v.Kind == yaml.SequenceNode:
		for _, it := range v.Content {
			n := deref(it)
			switch {
			case n == nil:
				fs = append(fs, errorf(posOf(file, it), "yaml", "%s: alias chain too deep", key))
			case isNull(n):
			case n.Kind == yaml.ScalarNode:
				add(n)
			default:
				fs = append(fs, errorf(posOf(file, it), "type", "%s items must be strings, got %s", key, kindName(n)))
			}
		}
	default:
		fs = append(fs, errorf(posOf(file, raw), "type", "%s must be a string or a list of strings, got %s", key, kindName(v)))
	}
	return items, ps, fs
}

package index

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/distribution/reference"

	"github.com/cccp-project/cccp/internal/redact"
)

// LintOptions tune Lint. The zero value is the strict default.
type LintOptions struct {
	// AllowFile accepts file:// git URLs (for local test indexes).
	AllowFile bool
	// Registries are the registry hosts that name this index's own
	// registry in depends-on (e.g. "registry.centos.org"); references with
	// these hosts must resolve like host-less ones.
	Registries []string
	// PrebuildUnsupported, when set, names the configured build backend
	// that cannot run prebuild-script (OpenShift), so an entry with one is
	// an error at lint time rather than a failed build.
	PrebuildUnsupported string
}

// Lint checks idx without the network: required fields, names, tags,
// URLs, paths, emails, uniqueness and the dependency graph. Findings are
// sorted by position. Load's own findings (YAML syntax, types, unknown
// fields) are not repeated here.
func Lint(idx *Index, opts LintOptions) []Finding {
	var fs []Finding
	ids := map[string]map[string]Pos{} // file -> id -> first
	images := map[string]*Entry{}      // repository:tag -> first
	for _, e := range idx.Entries {
		fs = append(fs, lintEntry(idx, e, opts)...)

		if e.ID != "" {
			f := ids[e.Pos.File]
			if f == nil {
				f = map[string]Pos{}
				ids[e.Pos.File] = f
			}
			if first, dup := f[e.ID]; dup {
				fs = append(fs, errorf(e.PosOf("id"), "duplicate-id", "id %s is already used in this file at line %d", e.ID, first.Line))
			} else {
				f[e.ID] = e.PosOf("id")
			}
		}
		if e.AppID == "" || e.JobID == "" {
			continue
		}
		for i, t := range e.Tags() {
			key := e.Repository() + ":" + t
			first, dup := images[key]
			if !dup {
				images[key] = e
				continue
			}
			p := e.PosOf("desired-tag")
			if i > 0 {
				p = e.ItemPos("desired-tags", i-1)
			}
			fs = append(fs, errorf(p, "duplicate-image", "%s/%s:%s is already delivered by the entry at %s", e.AppID, e.JobID, t, first.Pos))
		}
	}
	_, gf := buildGraph(idx, opts.Registries)
	fs = append(fs, gf...)
	SortFindings(fs)
	return fs
}

// requiredFields must be set in every entry (the original index required
// them; git-branch, target-file, desired-tag and build-context have
// defaults, depends-on may be null).
var requiredFields = []string{"id", "app-id", "job-id", "git-url", "git-path", "notify-email"}

// pathComponent is the grammar of one component of an image repository
// path (distribution/reference).
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)

// tagGrammar is the OCI distribution tag grammar.
var tagGrammar = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func lintEntry(idx *Index, e *Entry, opts LintOptions) []Finding {
	var fs []Finding
	values := map[string]bool{
		"id": e.ID != "", "app-id": e.AppID != "", "job-id": e.JobID != "", "git-url": e.GitURL != "",
		"git-path": e.GitPath != "", "notify-email": len(e.NotifyEmail) > 0,
	}
	for _, k := range requiredFields {
		if values[k] {
			continue
		}
		if p, ok := e.FieldPos[k]; ok {
			fs = append(fs, errorf(p, "required", "%s is empty", k))
		} else {
			fs = append(fs, errorf(e.Pos, "required", "missing required field %s", k))
		}
	}

	// Names.
	if idx.Form == IndexD && e.AppID != "" {
		want := appIDOfFile(e.Pos.File)
		switch {
		case e.AppID == LibraryNamespace && want != LibraryNamespace:
			fs = append(fs, errorf(e.PosOf("app-id"), "library", "the library namespace (images at the registry root) belongs in index.d/library.yaml, not in this file"))
		case e.AppID != want:
			fs = append(fs, errorf(e.PosOf("app-id"), "app-id-file", "app-id %q must equal the file's name %q (the file name is the namespace)", e.AppID, want))
		}
	}
	for _, k := range []struct{ key, v string }{{"app-id", e.AppID}, {"job-id", e.JobID}} {
		if k.v != "" && !pathComponent.MatchString(k.v) {
			fs = append(fs, errorf(e.PosOf(k.key), "name-format", "%s %q is not a valid image name component (lowercase letters and digits, separated by '.', '_', '__' or '-')", k.key, k.v))
		}
	}
	if e.AppID != "" && e.JobID != "" && pathComponent.MatchString(e.AppID) && pathComponent.MatchString(e.JobID) {
		if n := len(e.Repository()); n > reference.NameTotalLengthMax {
			fs = append(fs, errorf(e.PosOf("job-id"), "name-format", "image name %s is %d characters; at most %d are allowed", e.Repository(), n, reference.NameTotalLengthMax))
		}
	}

	// Tags.
	if !tagGrammar.MatchString(e.DesiredTag) {
		fs = append(fs, errorf(e.PosOf("desired-tag"), "tag-format", "desired-tag %q is not a valid tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')", e.DesiredTag))
	}
	for i, t := range e.ExtraTags {
		if !tagGrammar.MatchString(t) {
			fs = append(fs, errorf(e.ItemPos("desired-tags", i), "tag-format", "desired-tags item %q is not a valid tag", t))
		}
	}

	// Source.
	// A git-url whose credentials the loader dropped (redacted to "***@")
	// was reported by the loader already.
	if e.GitURL != "" && !strings.Contains(e.GitURL, redact.Mask+"@") {
		if err := CheckGitURL(e.GitURL, opts.AllowFile); err != nil {
			fs = append(fs, errorf(e.PosOf("git-url"), "git-url", "%v", err))
		}
	}
	if e.GitBranch != "" && (strings.HasPrefix(e.GitBranch, "-") || strings.ContainsAny(e.GitBranch, " ~^:?*[\\\x00") || strings.Contains(e.GitBranch, "..")) {
		fs = append(fs, errorf(e.PosOf("git-branch"), "git-branch", "git-branch %q is not a valid branch name", e.GitBranch))
	}
	gitPath, ok := inRepo("", e.GitPath)
	if !ok {
		fs = append(fs, errorf(e.PosOf("git-path"), "path-escape", "git-path %q leaves the repository", e.GitPath))
	}
	for _, k := range []struct{ key, v, base, rel string }{
		{"target-file", e.TargetFile, gitPath, "git-path"},
		{"build-context", e.BuildContext, gitPath, "git-path"},
		{"prebuild-script", e.PrebuildScript, "", "the repository root"},
		{"prebuild-context", e.PrebuildContext, "", "the repository root"},
	} {
		if k.v == "" || !ok && k.base != "" {
			continue
		}
		if _, in := inRepo(k.base, k.v); !in {
			fs = append(fs, errorf(e.PosOf(k.key), "path-escape", "%s %q, relative to %s, leaves the repository", k.key, k.v, k.rel))
		}
	}
	switch {
	case e.PrebuildScript != "" && e.PrebuildContext == "":
		fs = append(fs, errorf(e.PosOf("prebuild-script"), "prebuild", "prebuild-script needs prebuild-context (the folder it runs in)"))
	case e.PrebuildScript == "" && e.PrebuildContext != "":
		fs = append(fs, warnf(e.PosOf("prebuild-context"), "prebuild", "prebuild-context without prebuild-script has no effect"))
	}
	if e.PrebuildScript != "" && opts.PrebuildUnsupported != "" {
		fs = append(fs, errorf(e.PosOf("prebuild-script"), "prebuild-unsupported", "prebuild-script is not supported by the %s build backend this cccp uses", opts.PrebuildUnsupported))
	}

	// Mail.
	for i, a := range e.NotifyEmail {
		addr, err := mail.ParseAddress(a)
		switch {
		case err != nil:
			fs = append(fs, errorf(e.ItemPos("notify-email", i), "email", "notify-email %q is not an address: %v", a, err))
		case !strings.Contains(addr.Address[strings.LastIndexByte(addr.Address, '@')+1:], "."):
			fs = append(fs, warnf(e.ItemPos("notify-email", i), "email", "notify-email %q has no domain with a dot; mail will not be delivered", a))
		}
	}
	if _, set := e.NotifySuccess(); e.NotifyOnSuccess != "" && !set {
		fs = append(fs, errorf(e.PosOf("notify-on-success"), "notify-on-success", "notify-on-success must be true or false, not %q", e.NotifyOnSuccess))
	}
	return fs
}

// inRepo resolves p against base (both relative to the repository root;
// a leading "/" means the root) and reports whether it stays inside.
func inRepo(base, p string) (string, bool) {
	if strings.HasPrefix(p, "/") {
		base, p = "", strings.TrimLeft(p, "/")
	}
	c := path.Clean(path.Join(base, p))
	if c == ".." || strings.HasPrefix(c, "../") {
		return c, false
	}
	return c, true
}

// CheckGitURL accepts the URLs cccp clones from: https, http, git, ssh
// (and git+ssh) URLs, scp-like `user@host:path`, and file:// only when
// allowFile. It refuses option injection (a leading '-'), git's
// `transport::address` remote helpers (such as ext::), and credentials in
// the URL (GitCredentials). Its messages show the URL redacted.
func CheckGitURL(u string, allowFile bool) error {
	shown := redact.URL(u)
	if strings.HasPrefix(u, "-") {
		return fmt.Errorf("git-url %q starts with '-' (it would be read as an option)", shown)
	}
	if i := strings.Index(u, "::"); i >= 0 && !strings.Contains(u[:i], "/") {
		return fmt.Errorf("git-url %q uses a remote-helper transport (%s::), which is not allowed", shown, redact.URL(u[:i]))
	}
	if strings.ContainsAny(u, " \t\r\n\x00") {
		return fmt.Errorf("git-url %q contains white space or control characters", shown)
	}
	if GitCredentials(u) {
		return errors.New("git-url must not carry credentials (a token or user:password before '@'); " +
			"they would be stored and shown with every run. Give git its credentials another way (a credential helper)")
	}
	if strings.Contains(u, "://") {
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("git-url %q does not parse", shown)
		}
		switch strings.ToLower(p.Scheme) {
		case "https", "http", "git", "ssh", "git+ssh", "ssh+git":
			if p.Host == "" {
				return fmt.Errorf("git-url %q has no host", shown)
			}
		case "file":
			if !allowFile {
				return fmt.Errorf("git-url %q: file:// URLs are not allowed here", shown)
			}
		default:
			return fmt.Errorf("git-url scheme %q is not allowed (use https, http, git or ssh)", redact.URL(p.Scheme))
		}
		return nil
	}
	// scp-like: [user@]host:path, with no '/' before the colon.
	colon := strings.IndexByte(u, ':')
	if colon > 0 && !strings.Contains(u[:colon], "/") && colon+1 < len(u) {
		host := u[strings.LastIndexByte(u[:colon], '@')+1 : colon]
		if host != "" && !strings.HasPrefix(host, "-") {
			return nil
		}
	}
	return fmt.Errorf("git-url %q is not a URL (use https://host/path, git://, ssh:// or user@host:path)", shown)
}

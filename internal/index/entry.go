// Package index reads, validates and orders the container index: the
// CentOS container-index format (`index.d/<app-id>.yaml` files, each a
// top-level `Projects:` list, or the older single `index.yml`) and the
// per-repository `cccp.yaml`.
package index

import (
	"fmt"
	"strings"
)

// Pos is a place in a source file. Line and Col are 1-based; zero means
// unknown.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Defaults the original pipeline filled in for omitted fields.
const (
	DefaultGitBranch    = "master"
	DefaultTargetFile   = "Dockerfile"
	DefaultDesiredTag   = "latest"
	DefaultBuildContext = "./"
	// LibraryNamespace is the app-id whose images go to the registry's root
	// namespace (`<registry>/<job-id>:<tag>`), as official images do.
	LibraryNamespace = "library"
)

// Entry is one project of the index: what to build, from where, and where
// to deliver it. Defaults are applied by the loader, so every field that has
// a default is set.
type Entry struct {
	// ID is the entry's `id` as written (a number or a string); only
	// unique within its file.
	ID string `json:"id,omitempty"`

	AppID      string `json:"app-id"`
	JobID      string `json:"job-id"`
	GitURL     string `json:"git-url"`
	GitBranch  string `json:"git-branch"`
	GitPath    string `json:"git-path"`
	TargetFile string `json:"target-file"`
	// DesiredTag is the original single delivery tag.
	DesiredTag string `json:"desired-tag"`
	// ExtraTags come from the `desired-tags` list (a cccp extension): more
	// tags the same image is delivered under. Tags returns both.
	ExtraTags   []string `json:"desired-tags,omitempty"`
	NotifyEmail []string `json:"notify-email,omitempty"`
	// NotifyOnSuccess (a cccp extension) overrides the configured switch
	// for mails about passed builds: "true" or "false"; "" follows it.
	NotifyOnSuccess string   `json:"notify-on-success,omitempty"`
	BuildContext    string   `json:"build-context"`
	DependsOn       []string `json:"depends-on,omitempty"`
	PrebuildScript  string   `json:"prebuild-script,omitempty"`
	PrebuildContext string   `json:"prebuild-context,omitempty"`

	// Pos is where the entry starts; FieldPos where each key was written
	// (keyed by the YAML key, e.g. "git-url").
	Pos      Pos            `json:"pos"`
	FieldPos map[string]Pos `json:"-"`

	// itemPos holds where each list item was written.
	itemPos struct{ dependsOn, notifyEmail, extraTags []Pos }
}

// ItemPos is where item i of a list field ("depends-on", "notify-email",
// "desired-tags") was written, or the key's position when unknown.
func (e *Entry) ItemPos(key string, i int) Pos {
	var ps []Pos
	switch key {
	case "depends-on":
		ps = e.itemPos.dependsOn
	case "notify-email":
		ps = e.itemPos.notifyEmail
	case "desired-tags":
		ps = e.itemPos.extraTags
	}
	if i >= 0 && i < len(ps) {
		return ps[i]
	}
	return e.PosOf(key)
}

// NotifySuccess reads notify-on-success: whether passed builds are mailed,
// and whether the entry says so at all (a value lint refuses counts as
// unset).
func (e *Entry) NotifySuccess() (on, set bool) {
	switch strings.ToLower(e.NotifyOnSuccess) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

// Name is the entry's project name, `app-id/job-id`.
func (e *Entry) Name() string { return e.AppID + "/" + e.JobID }

// Key names the entry uniquely within an index: `app-id/job-id:desired-tag`.
// A name often has several entries, one per desired-tag (centos/centos
// builds :7, :6, ...), so runs and projects are keyed by this.
func (e *Entry) Key() string { return e.Name() + ":" + e.DesiredTag }

// Tags is every tag the entry is delivered under, desired-tag first,
// without duplicates.
func (e *Entry) Tags() []string {
	tags := []string{e.DesiredTag}
	for _, t := range e.ExtraTags {
		dup := false
		for _, have := range tags {
			if have == t {
				dup = true
				break
			}
		}
		if !dup {
			tags = append(tags, t)
		}
	}
	return tags
}

// Repository is the image repository path of the entry within a registry:
// `app-id/job-id`, or just `job-id` for the library namespace.
func (e *Entry) Repository() string {
	if e.AppID == LibraryNamespace {
		return e.JobID
	}
	return e.AppID + "/" + e.JobID
}

// PosOf is where the field key was written, or the entry's position when
// the key was omitted.
func (e *Entry) PosOf(key string) Pos {
	if p, ok := e.FieldPos[key]; ok {
		return p
	}
	return e.Pos
}

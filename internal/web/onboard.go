package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/cccp-project/cccp/internal/index"
	"github.com/cccp-project/cccp/internal/onboard"
)

// formField is one field of the onboarding form.
type formField struct {
	Key, Label, Help string
	Value            string
	Placeholder      string
	Required         bool
	Errors           []string
	Warnings         []string
}

type onboardView struct {
	Fields  []formField
	Other   []string
	Outcome *onboard.Outcome
	Name    string
	Preview string
	CanAct  bool
	CSRF    string
}

// onboardFields are the form's fields in the index's order; the defaults
// are filled in, as the loader would.
func onboardFields() []formField {
	return []formField{
		{Key: "app-id", Label: "App ID", Required: true, Placeholder: "acme", Help: "The namespace: the index file index.d/<app-id>.yaml and the first part of the image name."},
		{Key: "job-id", Label: "Job ID", Required: true, Placeholder: "web", Help: "The image's name within the namespace."},
		{Key: "git-url", Label: "Git repository URL", Required: true, Placeholder: "https://github.com/acme/web", Help: "https, http, git, ssh or git@host:path."},
		{Key: "notify-email", Label: "Notify email", Required: true, Placeholder: "team@acme.example.org", Help: "Where build results go; separate several with commas."},
		{Key: "git-branch", Label: "Git branch", Value: index.DefaultGitBranch},
		{Key: "git-path", Label: "Git path", Value: "/", Help: "Folder of the Dockerfile in the repository; / is its root."},
		{Key: "target-file", Label: "Dockerfile", Value: index.DefaultTargetFile, Help: "Relative to the git path."},
		{Key: "build-context", Label: "Build context", Value: index.DefaultBuildContext, Help: "Relative to the git path."},
		{Key: "desired-tag", Label: "Tag", Value: index.DefaultDesiredTag},
		{Key: "desired-tags", Label: "More tags", Help: "Optional; separate with commas."},
		{Key: "depends-on", Label: "Depends on", Placeholder: "centos/centos:latest", Help: "Images of this index it is built FROM, so it is rebuilt when they are; separate with commas."},
		{Key: "prebuild-script", Label: "Prebuild script", Help: "Optional script run before the build."},
		{Key: "prebuild-context", Label: "Prebuild context", Help: "The folder the prebuild script runs in (needed with a script)."},
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// entryFromForm builds an entry from the form's values.
func entryFromForm(get func(string) string) index.Entry {
	t := func(k string) string { return strings.TrimSpace(get(k)) }
	return index.Entry{
		AppID: t("app-id"), JobID: t("job-id"), GitURL: t("git-url"), GitBranch: t("git-branch"),
		GitPath: t("git-path"), TargetFile: t("target-file"), DesiredTag: t("desired-tag"),
		ExtraTags: splitList(get("desired-tags")), NotifyEmail: splitList(get("notify-email")),
		BuildContext: t("build-context"), DependsOn: splitList(get("depends-on")),
		PrebuildScript: t("prebuild-script"), PrebuildContext: t("prebuild-context"),
	}
}

// entryKey is the key e gets in the index, its defaults filled in.
func entryKey(e index.Entry) string {
	e = onboard.WithDefaults(e)
	return e.Key()
}

// outcomeKey is the key of the project onboarded: the Onboarder's, or
// the entry's.
func outcomeKey(out onboard.Outcome, e index.Entry) string {
	if out.Project != "" {
		return out.Project
	}
	return entryKey(e)
}

func (s *Server) onboardView(r *http.Request) onboardView {
	id := identityOf(r.Context())
	return onboardView{Fields: onboardFields(), CanAct: id.Admin(), CSRF: id.CSRF}
}

func (s *Server) onboardForm(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Onboarder == nil {
		s.notFound(w, r, "Onboarding is not enabled on this server.")
		return
	}
	s.renderTitled(w, r, http.StatusOK, "onboard", "Add a project", s.onboardView(r))
}

func (s *Server) onboardSubmit(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Onboarder == nil {
		s.notFound(w, r, "Onboarding is not enabled on this server.")
		return
	}
	v := s.onboardView(r)
	for i := range v.Fields {
		v.Fields[i].Value = r.PostFormValue(v.Fields[i].Key)
	}
	e := entryFromForm(r.PostFormValue)
	out, err := s.cfg.Onboarder.Submit(r.Context(), e, identityOf(r.Context()).Actor())
	var ie *onboard.InvalidError
	switch {
	case errors.As(err, &ie):
		for i := range v.Fields {
			for _, f := range ie.Fields[v.Fields[i].Key] {
				if f.Severity == index.Error {
					v.Fields[i].Errors = append(v.Fields[i].Errors, s.mask.String(f.Message))
				} else {
					v.Fields[i].Warnings = append(v.Fields[i].Warnings, s.mask.String(f.Message))
				}
			}
		}
		for _, f := range ie.Other {
			v.Other = append(v.Other, s.mask.String(f.Message))
		}
		v.Preview = string(onboard.RenderEntry(onboard.WithDefaults(e)))
		s.renderTitled(w, r, http.StatusUnprocessableEntity, "onboard", "Add a project", v)
		return
	case err != nil:
		s.log.Error("onboard", "project", entryKey(e), "err", s.mask.String(err.Error()))
		v.Other = []string{s.mask.String(err.Error())}
		s.renderTitled(w, r, http.StatusInternalServerError, "onboard", "Add a project", v)
		return
	}
	s.log.Info("onboarded", "project", outcomeKey(out, e), "file", out.File, "run", out.RunID, "pr", out.PullRequest)
	v.Outcome, v.Name = &out, outcomeKey(out, e)
	v.Preview = string(onboard.RenderEntry(onboard.WithDefaults(e)))
	s.renderTitled(w, r, http.StatusOK, "onboard", "Project added", v)
}

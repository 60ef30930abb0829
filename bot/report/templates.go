package report

import (
	"embed"
	"fmt"
	"strings"
	"text/template"

	"github.com/cccp-project/cccp/internal/store"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// Templates are the words of what the bot writes on a forge
// (templates/*.tmpl, embedded), with the functions they render values
// with: code (an inline code span), text (escaped markdown), short (a
// commit's first 7), icon, title, stages and stagetable (of a run).
type Templates struct {
	t *template.Template
}

// NewTemplates parses the embedded templates.
func NewTemplates() (*Templates, error) {
	t, err := template.New("report").Option("missingkey=error").Funcs(template.FuncMap{
		"code":       CodeSpan,
		"text":       MDText,
		"short":      Short,
		"icon":       StateIcon,
		"title":      RunTitle,
		"stages":     StageLine,
		"stagetable": StageTable,
	}).ParseFS(templateFiles, "templates/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse report templates: %w", err)
	}
	return &Templates{t: t}, nil
}

// Render executes template name with data. The templates are fixed and
// every one is executed by bot's golden tests, so an error is cccp's bug:
// it is written into the text, never dropped silently.
func (t *Templates) Render(name string, data any) string {
	var b strings.Builder
	if err := t.t.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Sprintf("[cccp: template %s: %v]\n", name, err)
	}
	return b.String()
}

// Short is the first 7 characters of a commit SHA.
func Short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// RunLink is a run and its web page, for the templates.
type RunLink struct {
	Run *store.Run
	URL string
}

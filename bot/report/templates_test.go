package report

import (
	"strings"
	"testing"
)

// TestTemplates: the embedded templates parse, and a failing execution is
// written into the text instead of vanishing. What each template renders
// is pinned by bot's golden files (bot/testdata/render).
func TestTemplates(t *testing.T) {
	tm, err := NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tmpl string
		data       any
		want       string
	}{
		{"code span escapes", "failure-head", map[string]string{"Project": "a`b|c", "Stage": "test"}, "`a'b\\|c`"},
		{"markdown escaped", "waiting-summary", map[string]string{"Author": "x*y", "SHA": "1234567890"}, `@x\*y`},
		{"unknown template", "nope", nil, "[cccp: template nope:"},
		{"missing key", "failure-tail", map[string]string{}, "[cccp: template failure-tail:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tm.Render(tt.tmpl, tt.data); !strings.Contains(got, tt.want) {
				t.Errorf("Render(%s) = %q, want it to contain %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

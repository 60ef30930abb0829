package index

import (
	"slices"
	"testing"
)

func keysOf(es []*Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Key())
	}
	return out
}

func TestCompare(t *testing.T) {
	base, _ := ParseFile("index.d/acme.yaml", []byte(`Projects:
  - id: 1
    app-id: acme
    job-id: web
    git-url: https://example.com/acme/web
    git-path: /
    notify-email: a@example.com
  - id: 2
    app-id: acme
    job-id: api
    git-url: https://example.com/acme/api
    git-path: /
    notify-email: a@example.com
  - id: 3
    app-id: acme
    job-id: old
    git-url: https://example.com/acme/old
    git-path: /
    notify-email: a@example.com
`))
	head, _ := ParseFile("index.d/acme.yaml", []byte(`Projects:
  # web moved down, unchanged
  - id: 2
    app-id: acme
    job-id: api
    git-url: https://example.com/acme/api
    git-path: /
    git-branch: develop
    notify-email: a@example.com
  - id: 1
    app-id: acme
    job-id: web
    git-url: https://example.com/acme/web
    git-path: /
    notify-email: a@example.com
  - id: 4
    app-id: acme
    job-id: new
    git-url: "-oProxyCommand=x"
    git-path: /
    notify-email: a@example.com
`))
	changed, removed := Compare(base, head)
	if got := keysOf(changed); !slices.Equal(got, []string{"acme/api:latest", "acme/new:latest"}) {
		t.Errorf("changed = %v", got)
	}
	if got := keysOf(removed); !slices.Equal(got, []string{"acme/old:latest"}) {
		t.Errorf("removed = %v", got)
	}
}

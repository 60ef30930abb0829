package web

import (
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/index"
)

// TestSearchMatchesOnlyWhatIsShown: the dashboard's and the API's search
// match the masked git-url, never the secret it hides.
func TestSearchMatchesOnlyWhatIsShown(t *testing.T) {
	f := newFixture(t)
	e := f.projects.Entries()[0]
	e.JobID, e.GitURL = "private", "https://git.example/"+secret+"/app"
	f.projects.Set(index.NewIndex(f.root, index.IndexD, []*index.Entry{&e}))
	for _, path := range []string{"/?q=" + secret[:10], "/api/v1/projects?q=" + secret[:10]} {
		rec := f.get(path)
		if rec.Code != 200 || strings.Contains(rec.Body.String(), "acme/private") {
			t.Errorf("%s: %d, the entry matched through its hidden part:\n%s", path, rec.Code, rec.Body)
		}
	}
	if rec := f.get("/?q=private"); !strings.Contains(rec.Body.String(), "acme/private") || strings.Contains(rec.Body.String(), secret) {
		t.Errorf("search by name: the entry is missing or shows the secret")
	}
}

package gitlab

import (
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/forgetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testdata = "../../testdata/gitlab"

func TestNewWebhookRefusesEmptySecret(t *testing.T) {
	if _, err := NewWebhook(nil); !errors.Is(err, event.ErrNoSecret) {
		t.Errorf("NewWebhook(nil) = %v, want ErrNoSecret", err)
	}
}

func TestVerify(t *testing.T) {
	w, err := NewWebhook([]byte("tok3n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header []string
		ok     bool
	}{
		{name: "good", header: []string{"tok3n"}, ok: true},
		{name: "bad", header: []string{"tok3m"}},
		{name: "prefix", header: []string{"tok3"}},
		{name: "longer", header: []string{"tok3nn"}},
		{name: "missing"},
		{name: "empty", header: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != nil {
				h["X-Gitlab-Token"] = tt.header
			}
			err := w.Verify(h, []byte("{}"))
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, event.ErrBadSignature)) {
				t.Errorf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

var wantHandled = map[string]bool{
	"push-branch": true, "merge_request-open": true, "note-merge-request": true,
	"merge_request-update-oldrev": true, "merge_request-merge": true,
}

// examples returns the documented payloads plus variants derived from them
// in code: an MR update with and without new commits (oldrev).
func examples(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdata, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", testdata, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	mr := map[string]any{}
	if err := json.Unmarshal(out["merge_request-open"], &mr); err != nil {
		t.Fatal(err)
	}
	attrs := mr["object_attributes"].(map[string]any)
	attrs["action"] = "update"
	out["merge_request-update-title"], _ = json.Marshal(mr)
	attrs["oldrev"] = "0123456789abcdef0123456789abcdef01234567"
	out["merge_request-update-oldrev"], _ = json.Marshal(mr)
	attrs["action"] = "merge"
	delete(attrs, "oldrev")
	out["merge_request-merge"], _ = json.Marshal(mr)
	return out
}

func TestParseExamples(t *testing.T) {
	w, _ := NewWebhook([]byte("x"))
	for name, body := range examples(t) {
		t.Run(name, func(t *testing.T) {
			ev, err := w.Parse(http.Header{"X-Gitlab-Event-Uuid": {name}}, body)
			var got []byte
			if wantHandled[name] {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if ev.DeliveryID != name || ev.Forge != event.GitLab || ev.Repo.FullName == "" || ev.Repo.ID == 0 {
					t.Errorf("event lacks identity: %+v", ev)
				}
				got, _ = json.MarshalIndent(ev, "", "  ")
			} else {
				if !errors.Is(err, event.ErrIgnored) {
					t.Fatalf("Parse = %+v, %v; want ErrIgnored", ev, err)
				}
				got = []byte("ignored: " + err.Error())
			}
			forgetest.Golden(t, filepath.Join(testdata, "golden", name+".golden"), append(got, '\n'), *update)
		})
	}
}

func TestParseDetails(t *testing.T) {
	w, _ := NewWebhook([]byte("x"))
	ex := examples(t)
	push, err := w.Parse(http.Header{}, ex["push-branch"])
	if err != nil {
		t.Fatal(err)
	}
	if push.Kind != event.KindPush || push.Branch != "master" || push.After == "" || push.Sender == "" {
		t.Errorf("push = %+v", push)
	}
	if push.DeliveryID != event.BodyID(ex["push-branch"]) {
		t.Errorf("delivery ID without header = %q, want the body hash", push.DeliveryID)
	}
	note, err := w.Parse(http.Header{}, ex["note-merge-request"])
	if err != nil {
		t.Fatal(err)
	}
	if note.Kind != event.KindComment || note.Comment == nil || note.Comment.Body == "" || note.PR == nil || note.PR.Number == 0 || note.PR.HeadSHA == "" {
		t.Errorf("note = %+v, PR %+v", note, note.PR)
	}
	mr, err := w.Parse(http.Header{}, ex["merge_request-open"])
	if err != nil {
		t.Fatal(err)
	}
	if mr.PR == nil || mr.PR.HeadSHA == "" || mr.PR.HeadRef == "" || mr.PR.BaseRef == "" || mr.PR.Fork {
		// The documented MR has source_project_id == target_project_id: not a fork.
		t.Errorf("merge request = %+v", mr.PR)
	}
	if _, err := w.Parse(http.Header{}, []byte(`{}`)); err == nil || errors.Is(err, event.ErrIgnored) {
		t.Errorf("Parse({}) = %v, want a hard error", err)
	}
}

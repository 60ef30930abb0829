package gitea

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

const testdata = "../../testdata/gitea"

func TestNewWebhookRefusesEmptySecret(t *testing.T) {
	if _, err := NewWebhook([]byte{}); !errors.Is(err, event.ErrNoSecret) {
		t.Errorf("NewWebhook(empty) = %v, want ErrNoSecret", err)
	}
}

func TestVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"ref":"refs/heads/main"}`)
	w, err := NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	good := Sign(secret, body)
	tests := []struct {
		name    string
		headers map[string]string
		ok      bool
	}{
		{name: "gitea", headers: map[string]string{"X-Gitea-Signature": good}, ok: true},
		{name: "forgejo", headers: map[string]string{"X-Forgejo-Signature": good}, ok: true},
		{name: "bad", headers: map[string]string{"X-Gitea-Signature": Sign([]byte("other"), body)}},
		{name: "github style prefix", headers: map[string]string{"X-Gitea-Signature": "sha256=" + good}},
		{name: "missing", headers: map[string]string{}},
		{name: "wrong gitea beats right forgejo", headers: map[string]string{"X-Gitea-Signature": Sign([]byte("x"), body), "X-Forgejo-Signature": good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			err := w.Verify(h, body)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, event.ErrBadSignature)) {
				t.Errorf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

type example struct {
	kind string
	body []byte
}

// examples returns the recorded payloads and variants derived from them in
// code (see testdata/gitea/README.md).
func examples(t *testing.T) map[string]example {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testdata, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out := map[string]example{
		"push-branch":               {"push", read("push-branch")},
		"pull_request-opened":       {"pull_request", read("pull_request-opened")},
		"pull_request-synchronized": {"pull_request", read("pull_request-synchronized")},
	}
	var pr map[string]any
	if err := json.Unmarshal(out["pull_request-synchronized"].body, &pr); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"reopened", "closed", "edited"} {
		pr["action"] = action
		b, _ := json.Marshal(pr)
		out["pull_request-"+action] = example{"pull_request", b}
	}
	var push map[string]any
	_ = json.Unmarshal(out["push-branch"].body, &push)
	push["ref"] = "refs/tags/v1.0"
	b, _ := json.Marshal(push)
	out["push-tag"] = example{"push", b}
	// Gitea's IssueCommentPayload: issue, comment, repository, sender, is_pull.
	p := pr["pull_request"].(map[string]any)
	comment := map[string]any{
		"action": "created", "is_pull": true, "repository": pr["repository"], "sender": pr["sender"],
		"issue": map[string]any{"id": 2, "number": p["number"], "title": p["title"], "user": p["user"],
			"pull_request": map[string]any{"merged": false}},
		"comment": map[string]any{"id": 77, "body": "/retest", "user": pr["sender"]},
	}
	b, _ = json.Marshal(comment)
	out["issue_comment-pull"] = example{"issue_comment", b}
	comment["is_pull"] = false
	comment["issue"].(map[string]any)["pull_request"] = nil
	b, _ = json.Marshal(comment)
	out["issue_comment-issue"] = example{"issue_comment", b}
	out["release-published"] = example{"release", []byte(`{"action":"published"}`)}
	return out
}

var wantHandled = map[string]bool{
	"push-branch": true, "pull_request-opened": true, "pull_request-synchronized": true,
	"pull_request-reopened": true, "issue_comment-pull": true, "pull_request-closed": true,
}

func TestParseExamples(t *testing.T) {
	w, _ := NewWebhook([]byte("x"))
	for name, ex := range examples(t) {
		t.Run(name, func(t *testing.T) {
			h := http.Header{"X-Gitea-Event": {ex.kind}, "X-Gitea-Delivery": {name}}
			ev, err := w.Parse(h, ex.body)
			var got []byte
			if wantHandled[name] {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if ev.DeliveryID != name || ev.Forge != event.Gitea || ev.Repo.FullName == "" {
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

func TestParseForgejoHeaders(t *testing.T) {
	w, _ := NewWebhook([]byte("x"))
	ex := examples(t)["push-branch"]
	ev, err := w.Parse(http.Header{"X-Forgejo-Event": {"push"}, "X-Forgejo-Delivery": {"fj-1"}}, ex.body)
	if err != nil || ev.DeliveryID != "fj-1" || ev.Kind != event.KindPush || ev.Branch != "develop" {
		t.Errorf("Parse(Forgejo) = %+v, %v", ev, err)
	}
	if _, err := w.Parse(http.Header{}, ex.body); err == nil || errors.Is(err, event.ErrIgnored) {
		t.Errorf("Parse without event header = %v, want a hard error", err)
	}
	if !strings.HasPrefix(DeliveryID(http.Header{}, ex.body), "sha256-") {
		t.Error("no body-hash delivery ID")
	}
}

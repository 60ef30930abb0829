package github

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

const testdata = "../../testdata/github"

func TestNewWebhookRefusesEmptySecret(t *testing.T) {
	for _, secret := range [][]byte{nil, {}} {
		if _, err := NewWebhook(secret); !errors.Is(err, event.ErrNoSecret) {
			t.Errorf("NewWebhook(%q) error = %v, want ErrNoSecret", secret, err)
		}
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	// The example from GitHub's "Validating webhook deliveries" page.
	const documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	w, err := NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		body   []byte
		ok     bool
	}{
		{name: "documented example", header: documented, body: body, ok: true},
		{name: "Sign", header: Sign(secret, body), body: body, ok: true},
		{name: "upper-case hex", header: "sha256=" + strings.ToUpper(strings.TrimPrefix(documented, "sha256=")), body: body, ok: true},
		{name: "other body", header: documented, body: []byte("Hello, World?")},
		{name: "other secret", header: Sign([]byte("guess"), body), body: body},
		{name: "missing", header: "", body: body},
		{name: "sha1 prefix", header: "sha1=" + strings.TrimPrefix(documented, "sha256="), body: body},
		{name: "not hex", header: "sha256=zz", body: body},
		{name: "truncated", header: documented[:len(documented)-2], body: body},
		{name: "empty digest", header: "sha256=", body: body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("X-Hub-Signature-256", tt.header)
			}
			err := w.Verify(h, tt.body)
			if tt.ok && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, event.ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	secret := []byte("s3cret")
	w, err := NewWebhook(secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("sha256=00", []byte("{}"))
	f.Add(Sign(secret, []byte(`{"zen":"x"}`)), []byte(`{"zen":"x"}`))
	// GitHub's prefix is lower-case; Verify requires it as sent, while the
	// hex digits may be either case (hex.DecodeString).
	f.Add("SHA256="+strings.TrimPrefix(Sign(secret, []byte(`{}`)), "sha256="), []byte(`{}`))
	f.Add(strings.ToUpper(Sign(secret, []byte(`{}`))), []byte(`{}`))
	f.Add("sha256="+strings.ToUpper(strings.TrimPrefix(Sign(secret, []byte(`{}`)), "sha256=")), []byte(`{}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		h := http.Header{"X-Hub-Signature-256": {header}}
		err := w.Verify(h, body)
		hexSum, prefixed := strings.CutPrefix(header, "sha256=")
		want := prefixed && strings.EqualFold(hexSum, strings.TrimPrefix(Sign(secret, body), "sha256="))
		if want != (err == nil) {
			t.Fatalf("Verify(%q) = %v, want ok=%v", header, err, want)
		}
		if err != nil && !errors.Is(err, event.ErrBadSignature) {
			t.Fatalf("error %v does not wrap ErrBadSignature", err)
		}
	})
}

// handled lists the event/action pairs cccp acts on; every other example
// must be refused with a reason.
var handled = map[string]bool{
	"push": true, "ping": true,
	"pull_request/opened": true, "pull_request/synchronize": true, "pull_request/reopened": true,
	"pull_request/closed": true, "pull_request/ready_for_review": true, "pull_request/converted_to_draft": true,
	"issue_comment/created": true,
	"check_run/rerequested": true, "check_suite/rerequested": true,
}

// TestParseExamples runs every example payload extracted from
// @octokit/webhooks-examples through Parse and compares the normalised
// event with its golden file.
func TestParseExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdata, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", testdata, err)
	}
	w, err := NewWebhook([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			kind, _, _ := strings.Cut(name, "-")
			var raw struct {
				Action string `json:"action"`
				Ref    string `json:"ref"`
				Issue  *struct {
					PullRequest json.RawMessage `json:"pull_request"`
				} `json:"issue"`
			}
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			h := http.Header{"X-Github-Event": {kind}, "X-Github-Delivery": {name}}
			ev, err := w.Parse(h, body)
			want := handled[kind] || handled[kind+"/"+raw.Action]
			reason := ""
			switch {
			case kind == "push" && !strings.HasPrefix(raw.Ref, "refs/heads/"):
				want, reason = false, "not a branch"
			case kind == "issue_comment" && raw.Action == "created" && raw.Issue != nil && raw.Issue.PullRequest == nil:
				want, reason = false, "not a pull request"
			}
			var got []byte
			if want {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if ev.DeliveryID != name || ev.Forge != event.GitHub || ev.Repo.FullName == "" && kind != "ping" {
					t.Errorf("event lacks identity: %+v", ev)
				}
				got, _ = json.MarshalIndent(ev, "", "  ")
			} else {
				if !errors.Is(err, event.ErrIgnored) {
					t.Fatalf("Parse = %+v, %v; want ErrIgnored", ev, err)
				}
				if !strings.Contains(err.Error(), reason) {
					t.Errorf("reason %q lacks %q", err, reason)
				}
				got = []byte("ignored: " + err.Error())
			}
			forgetest.Golden(t, filepath.Join(testdata, "golden", name+".golden"), append(got, '\n'), *update)
		})
	}
}

func TestParseUnknownEvent(t *testing.T) {
	w, _ := NewWebhook([]byte("x"))
	_, err := w.Parse(http.Header{"X-Github-Event": {"installation"}}, []byte(`{}`))
	if !errors.Is(err, event.ErrIgnored) || !strings.Contains(err.Error(), "installation") {
		t.Errorf("Parse(installation) = %v, want ErrIgnored naming the event", err)
	}
	if _, err := w.Parse(http.Header{}, []byte(`{}`)); err == nil || errors.Is(err, event.ErrIgnored) {
		t.Errorf("Parse without X-GitHub-Event = %v, want a hard error", err)
	}
	if _, err := w.Parse(http.Header{"X-Github-Event": {"push"}}, []byte(`{`)); err == nil || errors.Is(err, event.ErrIgnored) {
		t.Errorf("Parse(bad JSON) = %v, want a hard error", err)
	}
}

func TestDeliveryIDFallback(t *testing.T) {
	a := DeliveryID(http.Header{}, []byte("a"))
	if a == "" || a != DeliveryID(http.Header{}, []byte("a")) || a == DeliveryID(http.Header{}, []byte("b")) {
		t.Errorf("body hash IDs not stable and distinct: %q", a)
	}
}

// The published issue_comment examples are all on issues. A comment on a
// pull request differs only by issue.pull_request, so add it to one.
func TestParseCommentOnPullRequest(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(testdata, "issue_comment-created-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	issue := m["issue"].(map[string]any)
	issue["pull_request"] = map[string]any{"url": "https://api.github.com/repos/x/y/pulls/1"}
	comment := m["comment"].(map[string]any)
	comment["body"] = "/retest"
	body, _ = json.Marshal(m)
	w, _ := NewWebhook([]byte("x"))
	ev, err := w.Parse(http.Header{"X-Github-Event": {"issue_comment"}}, body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != event.KindComment || ev.Comment == nil || ev.Comment.Body != "/retest" || ev.Comment.ID == 0 || ev.Comment.Author == "" {
		t.Errorf("comment event = %+v / %+v", ev, ev.Comment)
	}
	if ev.PR == nil || ev.PR.Number != int(issue["number"].(float64)) {
		t.Errorf("PR = %+v, want number %v", ev.PR, issue["number"])
	}
}

// BenchmarkVerifyParse measures the per-delivery cost of the ingest path's
// forge part on a recorded push payload.
func BenchmarkVerifyParse(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(testdata, "push-event-5.json"))
	if err != nil {
		b.Fatal(err)
	}
	secret := []byte("bench")
	w, _ := NewWebhook(secret)
	h := http.Header{"X-Github-Event": {"push"}, "X-Github-Delivery": {"d"}, "X-Hub-Signature-256": {Sign(secret, body)}}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := w.Verify(h, body); err != nil {
			b.Fatal(err)
		}
		if _, err := w.Parse(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

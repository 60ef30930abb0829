package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/gitea"
	"github.com/cccp-project/cccp/bot/github"
	"github.com/cccp-project/cccp/bot/gitlab"
	"github.com/cccp-project/cccp/internal/index"
)

// The real adapters are what cmd/cccp wires in.
var (
	_ Client  = (*github.App)(nil)
	_ Client  = (*github.Client)(nil)
	_ Client  = (*gitlab.Client)(nil)
	_ Client  = (*gitea.Client)(nil)
	_ Webhook = (*github.Webhook)(nil)
	_ Webhook = (*gitlab.Webhook)(nil)
	_ Webhook = (*gitea.Webhook)(nil)
)

// TestThreeForges: one signed push per forge (the payloads recorded from
// each forge's documentation under testdata/<forge>/) goes through the
// endpoint, the store and the dispatcher to a branch run, verified and
// parsed by the real adapters.
func TestThreeForges(t *testing.T) {
	glWebhook, err := gitlab.NewWebhook([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	gtWebhook, err := gitea.NewWebhook([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mac := func(body []byte) string {
		m := hmac.New(sha256.New, []byte(testSecret))
		m.Write(body)
		return hex.EncodeToString(m.Sum(nil))
	}
	ghHdr, ghBody := ghPayload(t, "push-event-5.json", nil)
	ghHdr.Set("X-GitHub-Delivery", "gh-1")
	glBody := read("../testdata/gitlab/push-branch.json")
	gtBody := read("../testdata/gitea/push-branch.json")
	tests := []struct {
		forge string
		hdr   http.Header
		body  []byte
	}{
		{event.GitHub, ghHdr, ghBody},
		{event.GitLab, http.Header{"X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {testSecret},
			"X-Gitlab-Event-Uuid": {"gl-1"}, "Content-Type": {"application/json"}}, glBody},
		{event.Gitea, http.Header{"X-Gitea-Event": {"push"}, "X-Gitea-Signature": {mac(gtBody)},
			"X-Gitea-Delivery": {"gt-1"}, "Content-Type": {"application/json"}}, gtBody},
	}
	entries := []*index.Entry{
		entry("hello", "web", "https://github.com/Codertocat/Hello-World", "master"),
		entry("mike", "diaspora", "git@example.com:mike/diaspora.git", "master"),
		entry("gitea", "webhooks", "http://LOCALHOST:3000/gitea/webhooks", "develop"),
	}
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return entries }
		c.Forges[event.GitLab] = Forge{Webhook: glWebhook, Client: newFakeForge(), Secret: testSecret}
		c.Forges[event.Gitea] = Forge{Webhook: gtWebhook, Client: newFakeForge(), Secret: testSecret}
	})
	for _, tt := range tests {
		t.Run(tt.forge, func(t *testing.T) {
			bad := tt.hdr.Clone()
			bad.Set("X-Gitlab-Token", "wrong")
			bad.Set("X-Gitea-Signature", mac([]byte("other")))
			bad.Set("X-Hub-Signature-256", github.Sign([]byte("other"), tt.body))
			if code, _ := post(t, tb, "/webhooks/"+tt.forge, bad, tt.body); code != http.StatusUnauthorized {
				t.Errorf("wrong secret: code %d, want 401", code)
			}
			if code, msg := post(t, tb, "/webhooks/"+tt.forge, tt.hdr, tt.body); code != http.StatusAccepted {
				t.Errorf("signed: code %d %s, want 202", code, msg)
			}
		})
	}
	runBot(t, tb)
	var got []string
	for _, r := range tb.runs(t) {
		got = append(got, r.Cause.Forge+" "+r.Cause.DeliveryID+" "+r.Project+" "+r.Branch)
	}
	slices.Sort(got)
	want := []string{"gitea gt-1 gitea/webhooks:latest develop", "github gh-1 hello/web:latest master", "gitlab gl-1 mike/diaspora:latest master"}
	if !slices.Equal(got, want) {
		t.Errorf("runs:\n got %q\nwant %q", got, want)
	}
}

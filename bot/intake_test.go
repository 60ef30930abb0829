package bot

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/bot/gitlab"
	"github.com/cccp-project/cccp/internal/index"
)

func glBot(t *testing.T, mod func(*Config)) *testBot {
	glWebhook, err := gitlab.NewWebhook([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry {
			return []*index.Entry{entry("mike", "diaspora", "git@example.com:mike/diaspora.git", "master")}
		}
		c.Forges[event.GitLab] = Forge{Webhook: glWebhook, Client: newFakeForge(), Secret: testSecret}
		if mod != nil {
			mod(c)
		}
	})
}

// TestGitLabRetryKey: GitLab 17.4+ retries a webhook with new event and
// webhook UUIDs but the same Idempotency-Key; the retry is a duplicate and
// the push runs once. Before, the UUIDs were the ID and the push ran twice.
func TestGitLabRetryKey(t *testing.T) {
	tb := glBot(t, nil)
	body, err := os.ReadFile("../testdata/gitlab/push-branch.json")
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(uuid string) http.Header {
		return http.Header{"X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {testSecret}, "Content-Type": {"application/json"},
			"X-Gitlab-Event-Uuid": {uuid}, "X-Gitlab-Webhook-Uuid": {uuid + "-hook"}, "Idempotency-Key": {"f3c1e0a2-retry-key"}}
	}
	if code, msg := post(t, tb, "/webhooks/gitlab", hdr("uuid-1"), body); code != http.StatusAccepted {
		t.Fatalf("first = %d %s", code, msg)
	}
	if code, msg := post(t, tb, "/webhooks/gitlab", hdr("uuid-2"), body); code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Errorf("retry = %d %s, want 200 duplicate", code, msg)
	}
	runBot(t, tb)
	if runs := tb.runs(t); len(runs) != 1 {
		t.Errorf("runs = %d, want 1", len(runs))
	}
}

// slowRequest opens a connection and sends the headers of a POST whose
// body (Content-Length n) it then trickles a byte at a time.
func slowRequest(t *testing.T, addr, path string, hdr http.Header, n int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", path, n)
	hdr.Write(c)
	io.WriteString(c, "\r\n{")
	return c
}

// answer reads the status line of the answer on c within d; "" when none
// came (or the connection closed without one).
func answer(c net.Conn, d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestSlowSenders: a sender that trickles its body is cut off after the
// body deadline; while the cap of unauthenticated readers is taken, others
// get 503 at once; a GitLab token is checked before a byte of the body is
// read. Before, the first two waited for as long as the sender liked, and a
// wrong GitLab token was only refused after the whole body.
func TestSlowSenders(t *testing.T) {
	tb := glBot(t, func(c *Config) { c.BodyTimeout, c.MaxUnauthenticated = 300*time.Millisecond, 1 })
	srv := httptest.NewServer(tb)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ghHdr := http.Header{"X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=00"}}

	t.Run("a wrong GitLab token is refused before the body", func(t *testing.T) {
		c := slowRequest(t, addr, "/webhooks/gitlab", http.Header{"X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {"wrong"}}, 1000)
		if got := answer(c, 2*time.Second); !strings.Contains(got, "401") {
			t.Errorf("answer = %q, want 401 before the body", got)
		}
	})
	t.Run("the cap: a second unauthenticated body gets 503", func(t *testing.T) {
		// Two bodies that never come, and a body deadline no run outlasts:
		// which of the two takes the one place is the scheduler's choice;
		// the other gets 503 at once, not at the deadline. (A first
		// request given a head start of a fixed sleep could still be
		// unread when the second came, or past its 300 ms deadline.)
		capped := glBot(t, func(c *Config) { c.BodyTimeout, c.MaxUnauthenticated = time.Minute, 1 })
		srv := httptest.NewServer(capped)
		t.Cleanup(srv.Close) // after the connections' own cleanups close them
		addr := strings.TrimPrefix(srv.URL, "http://")
		answers := make(chan string, 2)
		for range 2 {
			c := slowRequest(t, addr, "/webhooks/github", ghHdr, 1000)
			go func() { answers <- answer(c, 20*time.Second) }()
		}
		if got := <-answers; !strings.Contains(got, "503") {
			t.Errorf("first answer of two unauthenticated bodies = %q, want 503", got)
		}
	})
	t.Run("a trickled body is cut off", func(t *testing.T) {
		c := slowRequest(t, addr, "/webhooks/github", ghHdr, 1000)
		start := time.Now()
		// The body deadline is 300 ms; the sender would trickle for 20 s.
		// 10 s leaves a loaded machine its scheduling delays.
		go func() {
			for range 400 {
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		got := answer(c, 15*time.Second)
		if time.Since(start) > 10*time.Second {
			t.Errorf("the sender was not cut off (answer %q after %s)", got, time.Since(start))
		}
	})
}

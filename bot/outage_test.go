package bot

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cccp-project/cccp/bot/event"
	"github.com/cccp-project/cccp/internal/index"
)

// clock is a test clock the bot's goroutines may read.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestForgeOutage: the forge's API answers 500s, then a rate limit with
// its reset an hour away, while pushes, a pull request and a comment
// arrive. Pushes (no API call) are routed at once, not held behind the
// others; the others wait with stored next attempts (no worker sleeps: the
// pushes that arrive meanwhile go through, and the hour passes on the
// test's clock, not in a worker); while the forge asked to wait it is not
// called; afterwards every delivery has been acted on exactly once.
func TestForgeOutage(t *testing.T) {
	clk := &clock{now: time.Now()}
	var phase atomic.Int32 // 0: 500s, 1: rate limit, 2: up
	tb := newTestBot(t, func(c *Config) {
		c.Entries = func() []*index.Entry { return helloEntries[:2] }
		c.Now = clk.Now
		c.Workers = 2
	})
	tb.forge.writers["Codertocat"] = true
	tb.forge.prs[1] = &event.PullRequest{Number: 1, HeadSHA: sha1, HeadRef: "changes", BaseRef: "master", Author: "Codertocat"}
	tb.forge.canWriteErr = func() error {
		switch phase.Load() {
		case 0:
			return &event.RetryableError{Op: "github get permission", After: 30 * time.Second, Err: fmt.Errorf("502 Bad Gateway")}
		case 1:
			return &event.RetryableError{Op: "github get permission", After: time.Hour, Err: fmt.Errorf("403 API rate limit exceeded")}
		}
		return nil
	}
	runInBackground(t, tb)

	send := func(id string, hdr http.Header, body []byte) {
		t.Helper()
		hdr.Set("X-GitHub-Delivery", id)
		if code, msg := post(t, tb, "/webhooks/github", hdr, body); code != http.StatusAccepted {
			t.Fatalf("%s = %d %s", id, code, msg)
		}
	}
	push := func(id string) {
		t.Helper()
		hdr, body := ghPayload(t, "push-event-5.json", func(m map[string]any) {
			m["after"] = strings.Repeat("a", 32) + fmt.Sprintf("%08d", len(id)*1000+int(id[len(id)-1]))
		})
		send(id, hdr, body)
	}
	runsOf := func() map[string]int {
		out := map[string]int{}
		for _, r := range tb.runs(t) {
			out[r.Cause.DeliveryID]++
		}
		return out
	}
	canWriteCalls := func() int {
		n := 0
		for _, c := range tb.forge.Calls() {
			if strings.HasPrefix(c, "can-write") {
				n++
			}
		}
		return n
	}

	// The forge answers 500s: the pull request and the comment wait.
	hdr, body := prPayload(t, "pr-1", "Codertocat", sha1)
	send("pr-1", hdr, body)
	chdr, cbody := ghPayload(t, "issue_comment-created-1.json", func(m map[string]any) {
		obj(m, "issue")["pull_request"] = map[string]any{"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
		obj(m, "issue")["number"] = 1.0
		obj(m, "comment")["body"] = "/retest all"
		obj(m, "comment", "user")["login"] = "Codertocat"
	})
	send("comment-1", chdr, cbody)
	for i := range 5 {
		push(fmt.Sprint("push-a", i))
	}
	waitFor(t, 3*time.Second, "pushes held behind the pull request and the comment", func() bool {
		r := runsOf()
		for i := range 5 {
			if r[fmt.Sprint("push-a", i)] != 2 {
				return false
			}
		}
		return true
	})
	waitFor(t, 3*time.Second, "the pull request and the comment were not tried", func() bool { return canWriteCalls() >= 1 })
	if r := runsOf(); r["pr-1"]+r["comment-1"] != 0 {
		t.Fatalf("acted on during the outage: %v", r)
	}

	// 30 s later the forge rate-limits for an hour.
	phase.Store(1)
	clk.Add(31 * time.Second)
	// Both are tried again (or find the forge held) and put off for the
	// rate limit's hour; only then is the forge's count taken, so an
	// attempt still under way cannot count as a call while it asked to
	// wait.
	hour := clk.Now().Add(59 * time.Minute)
	waitFor(t, 5*time.Second, "the pull request and the comment put off for the rate limit's hour", func() bool {
		ds, err := tb.db.PendingDeliveries(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			if (d.ID == "pr-1" || d.ID == "comment-1") && d.NextAttempt.After(hour) {
				n++
			}
		}
		return n == 2
	})
	calls := canWriteCalls()
	for i := range 5 {
		push(fmt.Sprint("push-b", i))
	}
	waitFor(t, 3*time.Second, "pushes held behind the rate-limited deliveries", func() bool {
		r := runsOf()
		for i := range 5 {
			if r[fmt.Sprint("push-b", i)] != 2 {
				return false
			}
		}
		return true
	})
	clk.Add(30 * time.Minute)
	time.Sleep(1500 * time.Millisecond) // a dispatcher tick or more
	if n := canWriteCalls(); n != calls {
		t.Errorf("the forge was called %d times while it asked to wait", n-calls)
	}

	// The hour is over; the forge is up.
	phase.Store(2)
	clk.Add(31 * time.Minute)
	waitFor(t, 5*time.Second, "the pull request and the comment after the outage", func() bool {
		r := runsOf()
		return r["pr-1"] == 2 && r["comment-1"] == 2
	})
	waitFor(t, 5*time.Second, "deliveries still pending", func() bool { return len(pending(t, tb.db)) == 0 })
	time.Sleep(200 * time.Millisecond)
	for id, n := range runsOf() {
		if n != 2 {
			t.Errorf("delivery %s made %d runs, want 2 (one per entry)", id, n)
		}
	}
	if len(runsOf()) != 12 {
		t.Errorf("runs by delivery = %v, want 12 deliveries acted on", runsOf())
	}
}

package notify

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/notify/notifytest"
	"github.com/cccp-project/cccp/internal/redact"
	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const baseURL = "https://cccp.example"

// failingLog is the tail of a failed test stage's log as runlog stores it.
var failingLog = []string{
	"2026-11-30T10:00:00Z STEP 1/3: FROM registry.example/base:7",
	"2026-11-30T10:00:01Z running user script",
	"2026-11-30T10:00:02Z 0 errors in lint",
	"2026-11-30T10:00:03Z curl: (7) Failed to connect to 127.0.0.1 port 8080: Connection refused",
	"2026-11-30T10:00:03Z token=hunter2-secret",
	"2026-11-30T10:00:04Z \x1b[31mexit status 7\x1b[0m",
}

func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// finishRun creates a run of project in the queued state and finishes it
// the way the pipeline does: running, then its final state.
func finishRun(t *testing.T, db *store.DB, r *store.Run) *store.Run {
	t.Helper()
	ctx := context.Background()
	final := *r
	r.State, r.Stages, r.Images = store.Queued, nil, nil
	if err := db.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateRun(ctx, r.ID, func(x *store.Run) error { x.State = store.Running; return nil }); err != nil {
		t.Fatal(err)
	}
	out, err := db.UpdateRun(ctx, r.ID, func(x *store.Run) error {
		x.State, x.Stages, x.Images, x.Error = final.State, final.Stages, final.Images, final.Error
		x.Started, x.Finished = final.Started, final.Finished
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func failedRun() *store.Run {
	return &store.Run{
		Project: "org/app:latest", Kind: types.KindBranch, Branch: "master", Commit: "1a2b3c4d5e6f",
		Cause: store.Cause{Kind: types.CausePush, Actor: "alice", Commit: "1a2b3c4d5e6f", Ref: "refs/heads/master"},
		State: store.Failed, Started: t0, Finished: t0.Add(95 * time.Second),
		Stages: []store.Stage{
			{Name: types.StageBuild, State: store.Passed, Started: t0, Finished: t0.Add(80 * time.Second)},
			{Name: types.StageTest, State: store.Failed, Started: t0.Add(80 * time.Second), Finished: t0.Add(95 * time.Second),
				Reason: "ChecksFailed", Error: "1 blocking check failed",
				Checks: []store.Check{
					{Name: "smoke", State: store.Passed, Blocking: true},
					{Name: "user-script", State: store.Failed, Blocking: true, Summary: "exit status 7",
						Explain: []string{"curl: (7) Failed to connect to 127.0.0.1 port 8080"}},
				}},
			{Name: types.StageDeliver, State: store.Skipped},
		},
	}
}

func passedRun() *store.Run {
	return &store.Run{
		Project: "org/app:latest", Kind: types.KindBranch, Branch: "master", Commit: "9f8e7d6c5b4a",
		Cause: store.Cause{Kind: types.CauseParent, Parent: "centos/centos:7"},
		State: store.Passed, Started: t0, Finished: t0.Add(2 * time.Minute),
		Stages: []store.Stage{
			{Name: types.StageBuild, State: store.Passed, Started: t0, Finished: t0.Add(time.Minute)},
			{Name: types.StageTest, State: store.Passed, Started: t0.Add(time.Minute), Finished: t0.Add(100 * time.Second)},
			{Name: types.StageDeliver, State: store.Passed, Started: t0.Add(100 * time.Second), Finished: t0.Add(2 * time.Minute)},
		},
		Images: []store.Image{{Ref: "registry.example/org/app:latest", Digest: "sha256:0123456789abcdef"}},
	}
}

type fixture struct {
	db     *store.DB
	smtp   *notifytest.Server
	n      *Notifier
	clock  *clock
	path   string
	sender *SMTP
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{smtp: notifytest.New(t), clock: &clock{now: time.Now()}, path: filepath.Join(t.TempDir(), "cccp.db")}
	sender, err := NewSMTP(smtpConfig(f.smtp))
	if err != nil {
		t.Fatal(err)
	}
	f.sender = sender
	f.open(t)
	return f
}

// open (re)opens the database and makes a new Notifier on it, as a
// restarted cccp does.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	f.db = openDB(t, f.path)
	t.Cleanup(func() { f.db.Close() })
	n, err := New(Config{
		Store: f.db, Sender: f.sender, BaseURL: baseURL + "/",
		Audience: func(project string) Audience {
			return Audience{To: []string{"owner@app.example", "team@app.example"}}
		},
		LogTail: func(runID, stage string, n int) ([]string, error) {
			if stage != "test" {
				return nil, nil
			}
			return failingLog, nil
		},
		Masker:     redact.NewMasker("hunter2-secret"),
		MinBackoff: time.Minute, MaxBackoff: 10 * time.Minute, MaxAttempts: 5,
		Now: f.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.n = n
}

func (f *fixture) outbox(t *testing.T) []store.Mail {
	t.Helper()
	m, err := f.db.Mails(context.Background(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFailedRunMailArrives is issue 11's "An email arrives at the SMTP
// server in the test, with the failing line and the link".
func TestFailedRunMailArrives(t *testing.T) {
	f := newFixture(t)
	r := finishRun(t, f.db, failedRun())
	f.n.Step(context.Background())

	got := f.smtp.Messages()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	m := got[0]
	if !m.TLS || m.User != "cccp" {
		t.Errorf("delivered with TLS=%v user=%q, want STARTTLS and AUTH as cccp", m.TLS, m.User)
	}
	if strings.Join(m.To, ",") != "owner@app.example,team@app.example" || m.From != "cccp@cccp.example" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[cccp] org/app:latest: FAILED at test (run " + r.ID + ")"; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
	body := decodeBody(t, msg)
	for _, want := range []string{
		"curl: (7) Failed to connect to 127.0.0.1 port 8080: Connection refused", // the failing line of the log
		"user-script: curl: (7) Failed to connect",                               // the check's own explanation
		"cccp: ChecksFailed: 1 blocking check failed",                            // the stage's reason
		baseURL + "/runs/" + r.ID,                                                // the link
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "hunter2-secret") || strings.Contains(body, "\x1b") {
		t.Errorf("body carries a secret or an escape sequence:\n%s", body)
	}
	if box := f.outbox(t); len(box) != 0 {
		t.Errorf("outbox after sending: %+v", box)
	}
	// A later round sends nothing more.
	f.n.Step(context.Background())
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("after a second round the server has %d messages, want 1", n)
	}
}

func decodeBody(t *testing.T, msg *mail.Message) string {
	t.Helper()
	raw, err := io.ReadAll(msg.Body)
	if err != nil {
		t.Fatal(err)
	}
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		raw, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw)))
	case "base64":
		raw, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(raw)))
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(raw), "\r\n", "\n")
}

func TestTransientFailureRetriesThenSends(t *testing.T) {
	f := newFixture(t)
	f.smtp.Answer(notifytest.TempFail)
	finishRun(t, f.db, failedRun())
	ctx := context.Background()

	f.n.Step(ctx)
	box := f.outbox(t)
	if len(box) != 1 || box[0].Attempts != 1 || box[0].Failed || !strings.Contains(box[0].LastError, "451") {
		t.Fatalf("after a 451 the outbox is %+v, want one mail waiting with the 451", box)
	}
	f.n.Step(ctx) // not due yet
	if n := f.smtp.DataCommands(); n != 1 {
		t.Fatalf("retried before the back-off: %d DATA commands", n)
	}
	f.clock.Add(2 * time.Minute)
	f.n.Step(ctx)
	if n := len(f.smtp.Messages()); n != 1 {
		t.Fatalf("after the back-off the server has %d messages, want 1", n)
	}
	if box := f.outbox(t); len(box) != 0 {
		t.Errorf("outbox after sending: %+v", box)
	}
}

func TestPermanentFailureStopsWithReason(t *testing.T) {
	f := newFixture(t)
	f.smtp.Answer(notifytest.Refused)
	finishRun(t, f.db, failedRun())
	ctx := context.Background()

	f.n.Step(ctx)
	box := f.outbox(t)
	if len(box) != 1 || !box[0].Failed || !strings.Contains(box[0].LastError, "550") ||
		!strings.Contains(box[0].LastError, "refused by policy") {
		t.Fatalf("after a 550 the outbox is %+v, want one given-up mail with the server's answer", box)
	}
	f.clock.Add(24 * time.Hour)
	f.n.Step(ctx)
	if n := f.smtp.DataCommands(); n != 1 {
		t.Errorf("a refused mail was tried again: %d DATA commands", n)
	}
}

func TestWrongPasswordRetriesAndStaysSecret(t *testing.T) {
	f := newFixture(t)
	cfg := smtpConfig(f.smtp)
	cfg.Password = "wrong-password-value"
	sender, err := NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.n.cfg.Sender = sender
	finishRun(t, f.db, failedRun())
	f.n.Step(context.Background())
	box := f.outbox(t)
	if len(box) != 1 || box[0].Failed || box[0].Attempts != 1 {
		t.Fatalf("after a refused login the outbox is %+v, want one mail waiting to be retried", box)
	}
	if strings.Contains(box[0].LastError, "wrong-password-value") || !strings.Contains(box[0].LastError, "535") {
		t.Errorf("LastError %q: want the 535 and no password", box[0].LastError)
	}
}

// TestCrashBetweenFinishAndSend stops cccp (closes the database) after a
// run finished and before any mail was rendered; the restarted notifier
// sends the mail once, and a further restart sends nothing.
func TestCrashBetweenFinishAndSend(t *testing.T) {
	f := newFixture(t)
	finishRun(t, f.db, failedRun())
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}

	f.open(t)
	f.n.Step(context.Background())
	if n := len(f.smtp.Messages()); n != 1 {
		t.Fatalf("after the restart the server has %d messages, want 1", n)
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}

	f.open(t)
	f.n.Step(context.Background())
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("after a second restart the server has %d messages, want still 1", n)
	}
}

// TestCrashBetweenQueueAndSend: the mail was queued but the server was
// down; after a restart it is sent once.
func TestCrashBetweenQueueAndSend(t *testing.T) {
	f := newFixture(t)
	f.smtp.Answer(notifytest.TempFail)
	finishRun(t, f.db, failedRun())
	f.n.Step(context.Background())
	f.db.Close()

	f.open(t)
	f.clock.Add(time.Hour)
	f.n.Step(context.Background())
	f.n.Step(context.Background())
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("server has %d messages, want 1", n)
	}
}

func TestWhoGetsMail(t *testing.T) {
	on, off := true, false
	tests := []struct {
		name      string
		kind      types.RunKind
		state     store.State
		global    bool
		onSuccess *bool
		to        []string
		want      bool
	}{
		{"failed branch run", types.KindBranch, store.Failed, false, nil, []string{"a@x.example"}, true},
		{"passed, successes on", types.KindBranch, store.Passed, true, nil, []string{"a@x.example"}, true},
		{"passed, successes off globally", types.KindBranch, store.Passed, false, nil, []string{"a@x.example"}, false},
		{"passed, entry switches off", types.KindBranch, store.Passed, true, &off, []string{"a@x.example"}, false},
		{"passed, entry switches on", types.KindBranch, store.Passed, false, &on, []string{"a@x.example"}, true},
		{"failed, entry switched successes off", types.KindBranch, store.Failed, true, &off, []string{"a@x.example"}, true},
		{"cancelled (superseded)", types.KindBranch, store.Cancelled, true, nil, []string{"a@x.example"}, false},
		{"pull request run (reported on the PR)", types.KindPR, store.Failed, true, nil, []string{"a@x.example"}, false},
		{"trial run", types.KindTrial, store.Failed, true, nil, []string{"a@x.example"}, false},
		{"entry gone from the index", types.KindBranch, store.Failed, true, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Notifier{cfg: Config{OnSuccess: tt.global}}
			got := n.wants(&store.Run{Kind: tt.kind, State: tt.state}, Audience{To: tt.to, OnSuccess: tt.onSuccess})
			if got != tt.want {
				t.Errorf("wants = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOnlyFinishingMarks: a run stored already finished (an "up to date"
// record) and a second update of a finished run queue no mail.
func TestOnlyFinishingMarks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	done := passedRun()
	if err := f.db.CreateRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	r := finishRun(t, f.db, failedRun())
	runs, err := f.db.FinishedRuns(ctx, 0)
	if err != nil || len(runs) != 1 || runs[0].ID != r.ID {
		t.Fatalf("FinishedRuns = %v, %v; want only run %s", runs, err, r.ID)
	}
	f.n.Step(ctx)
	if _, err := f.db.UpdateRun(ctx, r.ID, func(x *store.Run) error { x.Error = "noted later"; return nil }); err != nil {
		t.Fatal(err)
	}
	f.n.Step(ctx)
	if n := len(f.smtp.Messages()); n != 1 {
		t.Errorf("server has %d messages, want 1", n)
	}
}

// TestNotifyQueuesIntoOutbox is the entry point of rescans.
func TestNotifyQueuesIntoOutbox(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	err := f.n.Notify(ctx, []string{"owner@app.example"}, "[cccp] org/app:latest: rescan found\r\nBcc: x@evil.example 2 new updates",
		"openssl 3.0.7 -> 3.0.8\nfetched https://hunter2-secret@mirror.example/repo\n")
	if err != nil {
		t.Fatal(err)
	}
	f.n.Step(ctx)
	got := f.smtp.Messages()
	if len(got) != 1 || strings.Join(got[0].To, ",") != "owner@app.example" {
		t.Fatalf("server received %+v", got)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	body := decodeBody(t, msg)
	if msg.Header.Get("Bcc") != "" || !strings.Contains(body, "openssl 3.0.7 -> 3.0.8") {
		t.Errorf("headers %v", msg.Header)
	}
	// Findings come from the image and its repositories: a secret in them
	// is masked, as in a run's mail.
	if strings.Contains(body, "hunter2-secret") {
		t.Errorf("the secret reached the mail:\n%s", body)
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		run  *store.Run
	}{
		{"failed", failedRun()},
		{"passed", passedRun()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(Config{Store: nopStore{}, Sender: nopSender{}, Audience: func(string) Audience { return Audience{} },
				BaseURL: baseURL, Masker: redact.NewMasker("hunter2-secret"),
				LogTail: func(string, string, int) ([]string, error) { return failingLog, nil }})
			if err != nil {
				t.Fatal(err)
			}
			r := tt.run
			r.ID = "17"
			m, err := n.render(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			got := "Subject: " + m.Subject + "\n\n" + m.Text
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("rendered mail differs from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}

type nopStore struct{ Store }
type nopSender struct{}

func (nopSender) Send(context.Context, Message) error { return nil }

// smtpConfig is an SMTPConfig for the test's server, trusting its
// certificate.
func smtpConfig(s *notifytest.Server) SMTPConfig {
	return SMTPConfig{Host: s.Host(), Port: s.Port(), From: "cccp@cccp.example", Username: notifytest.User,
		Password: notifytest.Password, Auth: "plain", Timeout: 10 * time.Second, TLSConfig: s.TLSConfig()}
}

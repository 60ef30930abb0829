package main

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/notify/notifytest"
	"github.com/cccp-project/cccp/internal/testgit"
)

// TestEndToEndFailureMail is issue 11's "An email arrives at the SMTP
// server in the test, with the failing line and the link": the real cccp
// serve builds a push whose test script fails, and the entry's
// notify-email gets one mail over STARTTLS with AUTH, quoting the
// script's failing line and linking the run.
func TestEndToEndFailureMail(t *testing.T) {
	x := newE2E(t)
	smtpd := notifytest.New(t)
	ca := filepath.Join(t.TempDir(), "smtp-ca.pem")
	writeFile(t, ca, string(smtpd.CertPEM()))
	cfg, err := os.ReadFile(x.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, x.config, string(cfg)+`notify:
  email: {on_success: false}
  smtp:
    host: `+smtpd.Host()+`
    port: `+itoa(smtpd.Port())+`
    from: cccp@cccp.example
    username: `+notifytest.User+`
    auth: plain
    ca_file: `+ca+`
`)
	x.env = append(x.env, "CCCP_SMTP_PASSWORD="+notifytest.Password)

	const failing = "curl: (7) Failed to connect to db.internal port 5432: Connection refused"
	writeFile(t, filepath.Join(x.repo, "test.sh"), "#!/bin/sh\necho checking the database\necho '"+failing+"' >&2\nexit 7\n")
	sha := testgit.Commit(t, x.repo, "a failing test")
	x.start()
	if code := x.push(sha, "e2e-mail-1"); code != http.StatusAccepted {
		t.Fatalf("webhook answered %d, want 202", code)
	}
	if cr := x.completed(sha); cr.Conclusion != "failure" {
		t.Fatalf("check run conclusion %q, want failure", cr.Conclusion)
	}
	runs := x.runsOf(sha)
	if len(runs) != 1 {
		t.Fatalf("runs for %s: %v, want one", sha, runs)
	}
	link := x.base + "/runs/" + fmt.Sprint(runs[0]["id"])

	var got []notifytest.Received
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && len(got) == 0; time.Sleep(200 * time.Millisecond) {
		got = smtpd.Messages()
	}
	if len(got) != 1 {
		t.Fatalf("the SMTP server received %d messages, want 1", len(got))
	}
	m := got[0]
	if !m.TLS || m.User != notifytest.User || strings.Join(m.To, ",") != "octocat@github.com" {
		t.Errorf("delivered to %v, TLS %v, user %q", m.To, m.TLS, m.User)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body, err = io.ReadAll(quotedprintable.NewReader(msg.Body))
	} else {
		body, err = io.ReadAll(msg.Body)
	}
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	if !strings.Contains(text, failing) || !strings.Contains(text, link) {
		t.Errorf("the mail lacks the failing line or the link %s:\n%s", link, text)
	}
	if !strings.Contains(msg.Header.Get("Subject"), "FAILED at test") {
		t.Errorf("subject %q", msg.Header.Get("Subject"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

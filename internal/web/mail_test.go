package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
)

// TestMailAPI: the outbox shows the mail waiting and the mail refused with
// the server's answer (masked), without bodies, and only to admins: it
// names the maintainers' addresses; without an outbox, 404.
func TestMailAPI(t *testing.T) {
	f := newFixture(t)
	get := func(token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/mail", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return f.do(req)
	}
	if got := get(adminToken); got.Code != 404 {
		t.Fatalf("without an outbox: %d, want 404", got.Code)
	}
	f.srv.cfg.Outbox = f.db
	ctx := context.Background()
	mails := []store.Mail{
		{RunID: "3", To: []string{"a@app.example"}, Subject: "[cccp] app: FAILED at test", Text: "body with a log line"},
		{To: []string{"b@app.example"}, Subject: "[cccp] rescan", Text: "x"},
	}
	if err := f.db.QueueMail(ctx, mails, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.db.FailMail(ctx, "1", "refused: 550 5.7.1 no relay for token "+secret); err != nil {
		t.Fatal(err)
	}
	if got := get(""); got.Code != 401 && got.Code != 403 {
		t.Fatalf("anonymous GET /api/v1/mail = %d, want 401 or 403: it lists recipients", got.Code)
	}
	got := get(adminToken)
	if got.Code != 200 || strings.Contains(got.Body.String(), secret) || strings.Contains(got.Body.String(), "body with a log line") {
		t.Fatalf("GET /api/v1/mail = %d\n%s", got.Code, got.Body)
	}
	var rows []apiMail
	if err := json.Unmarshal(got.Body.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !rows[0].Failed || rows[0].Run != "3" || !strings.Contains(rows[0].LastError, "550 5.7.1") || rows[1].Failed {
		t.Errorf("rows = %+v", rows)
	}
}

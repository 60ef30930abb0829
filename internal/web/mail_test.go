package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
)

// TestMailAPI: the outbox shows the mail waiting and the mail refused with
// the server's answer (masked), without bodies, newest first, and only to
// admins: it names the maintainers' addresses; without an outbox, 404.
func TestMailAPI(t *testing.T) {
	f := newFixture(t)
	get := func(token string) *httptest.ResponseRecorder {
		return f.getMail(token, "/api/v1/mail")
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
	page := decodeMailPage(t, got)
	rows := page.Mails
	if len(rows) != 2 || page.Next != "" || rows[0].ID != "2" || rows[0].Failed ||
		!rows[1].Failed || rows[1].Run != "3" || !strings.Contains(rows[1].LastError, "550 5.7.1") || rows[1].GivenUpAt.IsZero() {
		t.Errorf("page = %+v; want mail 2 waiting, then mail 1 given up", page)
	}
}

type mailPage struct {
	Mails []apiMail `json:"mails"`
	Next  string    `json:"next"`
}

func (f *fixture) getMail(token, url string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return f.do(req)
}

func decodeMailPage(t *testing.T, got *httptest.ResponseRecorder) mailPage {
	t.Helper()
	var page mailPage
	if got.Code != 200 {
		t.Fatalf("GET mail = %d\n%s", got.Code, got.Body)
	}
	if err := json.Unmarshal(got.Body.Bytes(), &page); err != nil {
		t.Fatalf("%v\n%s", err, got.Body)
	}
	return page
}

// TestMailAPIPages: the outbox is listed newest first, a page at a time,
// each page naming the next; bad paging parameters get 400.
func TestMailAPIPages(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.Outbox = f.db
	var mails []store.Mail
	for i := range 5 {
		mails = append(mails, store.Mail{To: []string{"a@app.example"}, Subject: fmt.Sprint("mail ", i+1)})
	}
	if err := f.db.QueueMail(context.Background(), mails, nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	url := "/api/v1/mail?limit=2"
	for pages := 0; url != ""; pages++ {
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		page := decodeMailPage(t, f.getMail(adminToken, strings.TrimPrefix(url, f.srv.cfg.BaseURL)))
		if len(page.Mails) > 2 {
			t.Errorf("page of %d mails with limit=2", len(page.Mails))
		}
		for _, m := range page.Mails {
			ids = append(ids, m.ID)
		}
		url = page.Next
	}
	if want := []string{"5", "4", "3", "2", "1"}; !slices.Equal(ids, want) {
		t.Errorf("paged through %v, want %v", ids, want)
	}
	for _, bad := range []string{"limit=0", "limit=501", "limit=x", "before=x", "before=0"} {
		if got := f.getMail(adminToken, "/api/v1/mail?"+bad); got.Code != 400 {
			t.Errorf("?%s: %d, want 400", bad, got.Code)
		}
	}
}

package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cccp-project/cccp/internal/store"
)

// storeDeliveries replays through the real store, as the bot does.
type storeDeliveries struct{ *store.DB }

// TestDeliveriesPageAndReplay: a delivery cccp gave up shows with its
// reason (masked) on the page and in the API, and an admin replays it from
// the page or the API; readers cannot.
func TestDeliveriesPageAndReplay(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Deliveries = storeDeliveries{nil} })
	f.srv.cfg.Deliveries = storeDeliveries{f.db} // the fixture opens the store
	ctx := context.Background()
	for _, id := range []string{"gone-1", "later-2"} {
		if _, err := f.db.AcceptDelivery(ctx, store.Delivery{Forge: "github", ID: id, Event: "issue_comment", Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.db.FailDelivery(ctx, "github", "gone-1", "github get permission: 404: token "+secret+" refused"); err != nil {
		t.Fatal(err)
	}
	if err := f.db.RetryDelivery(ctx, "github", "later-2", time.Now().Add(time.Hour), "github: 502"); err != nil {
		t.Fatal(err)
	}
	if err := f.db.PutReport(ctx, store.Report{Key: "status:github:org/app:abc:cccp/x", Kind: "status", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	reps, _ := f.db.DueReports(ctx, time.Now(), 0)
	if err := f.db.FailReport(ctx, reps[0].Key, reps[0].Updated, "github create status: 422: Validation Failed"); err != nil {
		t.Fatal(err)
	}

	page := f.get("/deliveries")
	body := page.Body.String()
	if page.Code != 200 || !strings.Contains(body, "gone-1") || !strings.Contains(body, "404: token") || !strings.Contains(body, "later-2") {
		t.Fatalf("page = %d\n%s", page.Code, body)
	}
	if !strings.Contains(body, "422: Validation Failed") {
		t.Error("the page does not show the refused report")
	}
	if strings.Contains(body, secret) {
		t.Error("the page shows a secret")
	}
	if strings.Contains(body, `action="/deliveries/github/gone-1/replay"`) {
		t.Error("an anonymous reader is offered a replay")
	}

	var rows []deliveryRow
	api := f.get("/api/v1/deliveries")
	if err := json.Unmarshal(api.Body.Bytes(), &rows); err != nil || len(rows) != 2 || !rows[0].GivenUp || rows[1].GivenUp {
		t.Fatalf("api = %s (%v)", api.Body, err)
	}

	t.Run("reader cannot replay", func(t *testing.T) {
		rec := f.do(httptest.NewRequest("POST", "/api/v1/deliveries/github/gone-1/replay", nil))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("replay without a token = %d", rec.Code)
		}
	})
	t.Run("a pending delivery is not replayed", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/api/v1/deliveries/github/later-2/replay", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if rec := f.do(req); rec.Code != http.StatusConflict {
			t.Errorf("replay of a pending delivery = %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("admin replays from the page", func(t *testing.T) {
		cookie, csrf := f.session(adminToken)
		req := httptest.NewRequest("GET", "/deliveries", nil)
		req.AddCookie(cookie)
		if b := f.do(req).Body.String(); !strings.Contains(b, `action="/deliveries/github/gone-1/replay"`) {
			t.Fatalf("no replay button for the admin:\n%s", b)
		}
		req = httptest.NewRequest("POST", "/deliveries/github/gone-1/replay", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		if rec := f.do(req); rec.Code != http.StatusSeeOther {
			t.Fatalf("replay = %d %s", rec.Code, rec.Body)
		}
		ds, _ := f.db.PendingDeliveries(ctx, 0, 0)
		if len(ds) != 2 || ds[0].ID != "gone-1" {
			t.Errorf("pending after replay = %+v", ds)
		}
	})
}

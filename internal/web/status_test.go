package web

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestStatusPage(t *testing.T) {
	sizes := func(context.Context) ([]DataPart, error) {
		return []DataPart{{"db", 3 << 20}, {"logs", 512}, {"registry", 1 << 30}}, nil
	}
	f := newFixture(t, func(c *Config) { c.DataSizes = sizes })
	rec := f.get("/status")
	if rec.Code != 200 {
		t.Fatalf("status %d\n%s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	hasAll(t, "status page", body, []string{`<td>db</td><td title="3145728 bytes">3.0 MiB</td>`, `<td title="512 bytes">512 B</td>`,
		`1.0 GiB`, `<th>Total</th><th>1.0 GiB</th>`, `href="/status" class="here">Status</a>`}, nil)

	t.Run("measure failed", func(t *testing.T) {
		f := newFixture(t, func(c *Config) {
			c.DataSizes = func(context.Context) ([]DataPart, error) { return nil, errors.New("walk: permission denied") }
		})
		rec := f.get("/status")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "could not be measured") || strings.Contains(rec.Body.String(), "permission denied") {
			t.Errorf("status %d body %s", rec.Code, rec.Body)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		f := newFixture(t)
		if rec := f.get("/status"); rec.Code != 404 {
			t.Errorf("status %d, want 404", rec.Code)
		}
		if strings.Contains(f.get("/").Body.String(), `href="/status"`) {
			t.Error("the dashboard links the missing status page")
		}
	})
}

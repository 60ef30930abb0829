package intake

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cccp-project/cccp/internal/store"

	"github.com/cccp-project/cccp/bot/event"
)

func TestDeliveryID(t *testing.T) {
	rules := event.Headers{Retry: []string{"Idempotency-Key"}, Delivery: []string{"X-Event-Uuid", "X-Webhook-Uuid"}}
	body := []byte(`{"x":1}`)
	tests := []struct {
		name string
		hdr  http.Header
		want string
	}{
		{"retry key wins", http.Header{"Idempotency-Key": {"k"}, "X-Event-Uuid": {"e"}}, "k"},
		{"first delivery header", http.Header{"X-Event-Uuid": {"e"}, "X-Webhook-Uuid": {"w"}}, "e"},
		{"next delivery header", http.Header{"X-Webhook-Uuid": {"w"}}, "w"},
		{"control character passed over", http.Header{"Idempotency-Key": {"a\nb"}, "X-Event-Uuid": {"e"}}, "e"},
		{"none: body hash", http.Header{}, event.BodyID(body)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeliveryID(rules, tt.hdr, body); got != tt.want {
				t.Errorf("DeliveryID = %q, want %q", got, tt.want)
			}
		})
	}
}

// fakeWebhook accepts a delivery whose X-Sig header is "ok".
type fakeWebhook struct{}

func (fakeWebhook) Verify(h http.Header, _ []byte) error {
	if h.Get("X-Sig") != "ok" {
		return event.ErrBadSignature
	}
	return nil
}

func (fakeWebhook) Headers() event.Headers {
	return event.Headers{Delivery: []string{"X-Id"}, Event: "X-Event", Keep: []string{"X-Event"}}
}

// memStore keeps accepted deliveries in memory, or fails.
type memStore struct {
	mu   sync.Mutex
	seen map[string]store.Delivery
	fail error
}

func (m *memStore) AcceptDelivery(_ context.Context, d store.Delivery) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	if _, ok := m.seen[d.Forge+"/"+d.ID]; ok {
		return true, nil
	}
	d.Body = bytes.Clone(d.Body)
	m.seen[d.Forge+"/"+d.ID] = d
	return false, nil
}

// TestHandler: the endpoint's answers, and what it stores and hands on.
func TestHandler(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		hdr      http.Header
		body     string
		fail     error
		wantCode int
		wantKept bool // stored and handed on
	}{
		{"accepted", http.MethodPost, http.Header{"X-Sig": {"ok"}, "X-Id": {"d1"}, "X-Event": {"push"}}, "{}", nil, http.StatusAccepted, true},
		{"not POST", http.MethodGet, http.Header{"X-Sig": {"ok"}}, "", nil, http.StatusMethodNotAllowed, false},
		{"bad signature", http.MethodPost, http.Header{"X-Sig": {"no"}, "X-Id": {"d1"}}, "{}", nil, http.StatusUnauthorized, false},
		{"too large", http.MethodPost, http.Header{"X-Sig": {"ok"}, "X-Id": {"d1"}}, strings.Repeat("x", 65), nil, http.StatusRequestEntityTooLarge, false},
		{"store down", http.MethodPost, http.Header{"X-Sig": {"ok"}, "X-Id": {"d1"}}, "{}", errors.New("disk full"), http.StatusServiceUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &memStore{seen: map[string]store.Delivery{}, fail: tt.fail}
			var handed []store.Delivery
			in := New(Config{Store: st, MaxBody: 64, HandOff: func(d store.Delivery, release func()) bool {
				handed = append(handed, d)
				release()
				return true
			}})
			h := in.Handler("gitea", fakeWebhook{})
			req := httptest.NewRequest(tt.method, "/webhooks/gitea", strings.NewReader(tt.body))
			req.Header = tt.hdr
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("code = %d %s, want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if kept := len(st.seen) == 1 && len(handed) == 1; kept != tt.wantKept {
				t.Fatalf("stored %d, handed on %d; want kept %v", len(st.seen), len(handed), tt.wantKept)
			}
			if tt.wantKept {
				d := st.seen["gitea/d1"]
				if d.Event != "push" || string(d.Body) != tt.body || d.Headers["X-Event"] != "push" || d.Headers["X-Sig"] != "" {
					t.Errorf("stored %+v: want event, body and kept headers, never the signature", d)
				}
			}
		})
	}
}

// TestDuplicate: a redelivery under a stored ID is answered 200 duplicate
// and not handed on again.
func TestDuplicate(t *testing.T) {
	st := &memStore{seen: map[string]store.Delivery{}}
	handed := 0
	in := New(Config{Store: st, HandOff: func(_ store.Delivery, release func()) bool { handed++; release(); return true }})
	h := in.Handler("gitea", fakeWebhook{})
	var codes []int
	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitea", strings.NewReader("{}"))
		req.Header = http.Header{"X-Sig": {"ok"}, "X-Id": {"same"}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
	}
	if codes[0] != http.StatusAccepted || codes[1] != http.StatusOK || handed != 1 {
		t.Errorf("codes %v, handed on %d; want [202 200], 1", codes, handed)
	}
}

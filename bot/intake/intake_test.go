package intake

import (
	"net/http"
	"testing"

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

package github

import (
	"net/http"
	"os"
	"testing"
)

func BenchmarkParsePush25k(b *testing.B) {
	body, err := os.ReadFile("/work/shared/bench/push25k.json")
	if err != nil {
		b.Skip(err)
	}
	w, _ := NewWebhook([]byte("s3cret"))
	h := http.Header{"X-Github-Event": {"push"}, "X-Github-Delivery": {"x"}}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := w.Parse(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

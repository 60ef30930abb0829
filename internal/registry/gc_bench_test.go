package registry

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkGCPause measures how long GC holds writes in a registry with
// 1,000 tags (50 images, 20 tags each) and nothing to delete: the pause a
// push may wait for. It reports it as pause-ms.
func BenchmarkGCPause(b *testing.B) {
	e := startRegistry(b, "")
	auth := pushAuth(e)
	c := NewClient(ClientConfig{AuthFiles: []string{}, Credentials: map[string]Credentials{e.Host(): {User: "cccp", Password: mustPass(e)}}})
	for i := range 50 {
		src := fmt.Sprintf("%s/bench/app%d:t0", e.Host(), i%10)
		push(b, src, randomImage(b, 512, 2), auth)
		for j := 1; j < 20; j++ {
			if err := c.Tag(b.Context(), src, fmt.Sprintf("%s/bench/app%d:t%d-%d", e.Host(), i%10, i, j)); err != nil {
				b.Fatal(err)
			}
		}
	}
	var paused time.Duration
	b.ResetTimer()
	for b.Loop() {
		s, err := e.GC(b.Context(), false)
		if err != nil {
			b.Fatal(err)
		}
		paused += s.Paused
	}
	b.ReportMetric(float64(paused.Microseconds())/1000/float64(b.N), "pause-ms")
}

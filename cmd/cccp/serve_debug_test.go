package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestServeDebugLoopbackOnly(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060"} {
		if stop, err := serveDebug(addr, log); err == nil {
			stop()
			t.Errorf("serveDebug(%q) served; want a refusal (the profiler is for loopback only)", addr)
		} else if !strings.Contains(err.Error(), "loopback") {
			t.Errorf("serveDebug(%q) = %v; want it to say loopback", addr, err)
		}
	}
}

func TestServeDebugServesProfiles(t *testing.T) {
	stop, addr, err := listenDebug("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile") {
		t.Fatalf("GET goroutine profile: %d %.200s", resp.StatusCode, b)
	}
}

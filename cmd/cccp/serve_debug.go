package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/cccp-project/cccp/internal/registry"
)

// serveDebug serves Go's profiler on addr, a loopback address apart from
// the web UI: profiles show request bodies' shapes and timings, so they
// are for whoever is on the machine, not for the network. It returns the
// function that stops it.
func serveDebug(addr string, log *slog.Logger) (func(), error) {
	stop, _, err := listenDebug(addr, log)
	return stop, err
}

// listenDebug is serveDebug that also returns the address it serves on.
func listenDebug(addr string, log *slog.Logger) (func(), string, error) {
	if !registry.IsLoopback(addr) {
		return nil, "", fmt.Errorf("--debug-listen %s: the profiler serves on a loopback address only (127.0.0.1:PORT or [::1]:PORT)", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--debug-listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Warn("profiler stopped", "err", err)
		}
	}()
	log.Info("profiler serving", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, ln.Addr().String(), nil
}

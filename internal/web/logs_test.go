package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

func TestExplain(t *testing.T) {
	filler := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("step %d ok", i)
		}
		return out
	}
	tests := []struct {
		name   string
		lines  []string
		failed bool
		want   []int
	}{
		{"passed stage", []string{"error: nothing", "done"}, false, nil},
		{"empty log", nil, true, nil},
		{"compiler error", []string{"STEP 2/3: RUN make", "cc main.c", "main.c:3: error: expected ';'", "make: *** [all] Error 2", "cleanup", "bye"},
			true, []int{2, 3, 4, 5}},
		{"exit status", []string{"a", "b", "c", "process exited: exit status 1", "", ""}, true, []int{1, 2, 3}},
		{"zero errors is benign", []string{"0 errors, 2 warnings", "found no errors", "built with -Werror", "x", "y", "z"}, true, []int{3, 4, 5}},
		{"early noise is outside the window", append(append([]string{"error: old noise"}, filler(250)...), "FATAL: disk full"),
			true, []int{249, 250, 251}},
		{"npm and apt", []string{"npm ERR! code E404", "E: Unable to locate package foo", "ok", "ok", "ok"}, true, []int{0, 1, 2, 3, 4}},
		{"library names are not errors", []string{"Installing liberror-perl", "a", "b", "c"}, true, []int{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Explain(tt.lines, tt.failed); !slices.Equal(got, tt.want) {
				t.Errorf("Explain = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReadStageLogKeepsHeadAndTail(t *testing.T) {
	f := newFixture(t)
	var b strings.Builder
	n := headLines + tailLines + 500
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "2025-03-01T12:00:00.000000001Z line %d\n", i)
	}
	b.WriteString("2025-03-01T12:00:01Z " + strings.Repeat("x", 3*maxLineBytes) + "\n")
	b.WriteString("2025-03-01T12:00:02Z error: the end\n")
	b.WriteString("partial")
	l, err := f.srv.readStageLog(strings.NewReader(b.String()), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Head) != headLines || len(l.Tail) != tailLines || l.Omitted != n+2-headLines-tailLines {
		t.Errorf("head %d tail %d omitted %d", len(l.Head), len(l.Tail), l.Omitted)
	}
	if l.Lines != n+2 || l.Offset != int64(len(b.String())-len("partial")) {
		t.Errorf("lines %d offset %d", l.Lines, l.Offset)
	}
	if l.Head[0].Text != "line 1" || l.Head[0].Time != "12:00:00" || l.Tail[len(l.Tail)-1].Text != "error: the end" {
		t.Errorf("first %+v last %+v", l.Head[0], l.Tail[len(l.Tail)-1])
	}
	if long := l.Tail[len(l.Tail)-2]; len(long.Text) > maxLineBytes {
		t.Errorf("long line kept %d bytes", len(long.Text))
	}
	if l.First != n+2-2 && l.First != n {
		t.Errorf("first highlighted line %d", l.First)
	}
}

// TestLogEvents follows a stage while a real runlog Writer writes it.
func TestLogEvents(t *testing.T) {
	f := newFixture(t)
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "manual"}, map[types.StageName]store.State{"build": store.Running}, "")
	w, err := f.logs.Create(r.ID, "build")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "first line")
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/runs/"+r.ID+"/stages/build/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	events := bufio.NewReader(resp.Body)
	next := func() (event, id, data string) {
		for {
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("read events: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && event != "":
				return
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}
	if ev, _, data := next(); ev != "line" || !strings.Contains(data, `"n":1`) || !strings.Contains(data, `"text":"first line"`) {
		t.Fatalf("first event %s %s", ev, data)
	}
	fmt.Fprintln(w, "<script>second</script> "+secret)
	ev, id, data := next()
	if ev != "line" || !strings.HasSuffix(id, ":2") || !strings.Contains(data, `\u003cscript\u003esecond`) || strings.Contains(data, secret) {
		t.Fatalf("second event %s %s %s", ev, id, data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ev, _, data := next(); ev != "done" || data != `{"lines":2}` {
		t.Fatalf("last event %s %s", ev, data)
	}

	// A browser reconnecting with Last-Event-ID gets only what followed.
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/runs/"+r.ID+"/stages/build/events", nil)
	first, _, _ := strings.Cut(id, ":")
	req.Header.Set("Last-Event-ID", first+":2")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if strings.Contains(string(body), "event: line") || !strings.Contains(string(body), `{"lines":2}`) {
		t.Errorf("resumed stream: %s", body)
	}
}

// heapWriter discards what it gets and samples the live heap every MiB.
type heapWriter struct {
	header  http.Header
	n, next int64
	peak    uint64
	sample  []metrics.Sample
}

func (w *heapWriter) Header() http.Header { return w.header }
func (w *heapWriter) WriteHeader(int)     {}
func (w *heapWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.n >= w.next {
		w.next = w.n + 1<<20
		metrics.Read(w.sample)
		if v := w.sample[0].Value.Uint64(); v > w.peak {
			w.peak = v
		}
	}
	return len(p), nil
}

// TestLogDownloadStreams downloads a 50 MB log and checks the live heap
// stays far below the log's size.
func TestLogDownloadStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 50 MB log")
	}
	f := newFixture(t)
	r := f.addRun("acme/web:latest", "branch", store.Cause{Kind: "manual"}, map[types.StageName]store.State{"build": store.Failed}, "x")
	w, err := f.logs.Create(r.ID, "build")
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat("compiling a rather long line of build output with "+secret+" inside it ....\n", 1000))
	for written := 0; written < 50<<20; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Collect garbage early, so the heap's peak shows what is retained.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	hw := &heapWriter{header: http.Header{}, sample: sample}
	f.h.ServeHTTP(hw, httptest.NewRequest("GET", "/runs/"+r.ID+"/stages/build/log.txt", nil))
	if hw.n < 50<<20 {
		t.Fatalf("downloaded %d bytes", hw.n)
	}
	growth := int64(hw.peak) - int64(base)
	t.Logf("downloaded %d MiB; live heap grew at most %d KiB", hw.n>>20, growth>>10)
	if growth > 16<<20 {
		t.Errorf("live heap grew by %d MiB while streaming a 50 MiB log", growth>>20)
	}
	// The page of the same run reads the log with bounded memory too.
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/runs/"+r.ID, nil))
	if rec.Code != 200 || strings.Contains(rec.Body.String(), secret) {
		t.Fatalf("run page: %d", rec.Code)
	}
	if rec.Body.Len() > 4<<20 {
		t.Errorf("run page is %d bytes", rec.Body.Len())
	}
}

package runlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixed = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)

const fixedStamp = "2026-11-23T10:00:00.123456789Z"

// texts returns the log's lines without their timestamps, checking that
// every line has one.
func texts(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("log does not end with a newline")
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" && len(b) == 0 {
			continue
		}
		stamp, text, ok := strings.Cut(line, " ")
		ts, err := time.Parse(time.RFC3339Nano, stamp)
		if !ok || err != nil || ts.Location() != time.UTC || !strings.HasSuffix(stamp, "Z") {
			t.Errorf("line %q has no UTC RFC3339Nano timestamp", line)
		}
		out = append(out, text)
	}
	return out
}

func TestWriterLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"one line", []string{"hello\n"}, []string{"hello"}},
		{"lines in one write", []string{"a\nb\nc\n"}, []string{"a", "b", "c"}},
		{"partial across writes", []string{"hel", "lo wo", "rld\nnext", "\n"}, []string{"hello world", "next"}},
		{"no final newline", []string{"a\nunfinished"}, []string{"a", "unfinished"}},
		{"empty lines", []string{"\n\nx\n"}, []string{"", "", "x"}},
		{"carriage return kept", []string{"50%\r100%\n"}, []string{"50%\r100%"}},
		{"nothing", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(t.TempDir(), 0)
			w, err := l.Create("1", "build")
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := texts(t, filepath.Join(l.dir, "1", "build.log")); !slices.Equal(got, tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
			if _, err := w.Write([]byte("late\n")); err == nil {
				t.Error("Write after Close succeeded")
			}
		})
	}
}

func TestLongLineSplit(t *testing.T) {
	l := New(t.TempDir(), 0)
	w, _ := l.Create("1", "build")
	w.Write([]byte(strings.Repeat("x", maxLine*2+10)))
	w.Close()
	got := texts(t, filepath.Join(l.dir, "1", "build.log"))
	if len(got) != 3 || len(got[0]) != maxLine || len(got[2]) != 10 {
		t.Errorf("long line split into %d lines", len(got))
	}
}

func TestConcurrentWrites(t *testing.T) {
	l := New(t.TempDir(), 0)
	w, _ := l.Create("1", "test")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	w.Close()
	got := texts(t, filepath.Join(l.dir, "1", "test.log"))
	next := make([]int, 8)
	for _, line := range got {
		var g, i int
		if _, err := fmt.Sscanf(line, "g%d line %d", &g, &i); err != nil || i != next[g] {
			t.Fatalf("line %q out of order or torn (want g%d line %d)", line, g, next[g])
		}
		next[g]++
	}
	if len(got) != 8*500 {
		t.Errorf("%d lines, want %d", len(got), 8*500)
	}
}

// writeNumbered writes lines "line <i>" with a fixed timestamp and returns
// the bytes they take in the log.
func writeNumbered(t *testing.T, w *Writer, from, to int) int64 {
	t.Helper()
	w.now = func() time.Time { return fixed }
	var total int64
	for i := from; i < to; i++ {
		s := fmt.Sprintf("line %d\n", i)
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		total += int64(len(fixedStamp) + 1 + len(s))
	}
	return total
}

var markerRE = regexp.MustCompile(`^\.\.\. \[cccp: (\d+) bytes cut\] \.\.\.$`)

func TestSizeCap(t *testing.T) {
	const maxBytes = 20_000
	tests := []struct {
		name       string
		lines      int
		wantMarker bool
	}{
		{"under half", 100, false},
		{"between half and cap", 450, false},
		{"over cap", 2000, true},
		{"far over cap", 20000, true},
		{"over cap 1000", 1000, true},
		{"over cap 3001", 3001, true},
		{"over cap 5050", 5050, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(t.TempDir(), maxBytes)
			w, err := l.Create("7", "build")
			if err != nil {
				t.Fatal(err)
			}
			total := writeNumbered(t, w, 0, tt.lines)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(l.dir, "7", "build.log")
			fi, _ := os.Stat(path)
			if fi.Size() > maxBytes {
				t.Errorf("log is %d bytes, cap %d", fi.Size(), maxBytes)
			}
			got := texts(t, path)
			// Lines are a run from 0, then (maybe) the marker, then a run
			// ending with the last line.
			i, cut := 0, int64(-1)
			for ; i < len(got) && got[i] == fmt.Sprintf("line %d", i); i++ {
			}
			if i < len(got) {
				m := markerRE.FindStringSubmatch(got[i])
				if m == nil {
					t.Fatalf("line %d is %q, want line %d or the marker", i, got[i], i)
				}
				cut, _ = strconv.ParseInt(m[1], 10, 64)
				first := -1
				fmt.Sscanf(got[i+1], "line %d", &first)
				for j, line := range got[i+1:] {
					if line != fmt.Sprintf("line %d", first+j) {
						t.Fatalf("tail line %q, want line %d", line, first+j)
					}
				}
			}
			if last := got[len(got)-1]; last != fmt.Sprintf("line %d", tt.lines-1) {
				t.Errorf("last line %q, want line %d: the end must be kept", last, tt.lines-1)
			}
			if (cut >= 0) != tt.wantMarker {
				t.Fatalf("marker present = %v, want %v", cut >= 0, tt.wantMarker)
			}
			if cut >= 0 {
				markerLen := int64(len(fixedStamp) + 1 + len(got[i]) + 1)
				if fi.Size()-markerLen+cut != total {
					t.Errorf("kept %d + cut %d != written %d", fi.Size()-markerLen, cut, total)
				}
				if i < maxBytes/2/len("2026-11-23T10:00:00.123456789Z line 1000\n")-10 {
					t.Errorf("head kept only %d lines", i)
				}
				tailLines := int64(len(got) - i - 1)
				if minTail := int64(maxBytes/4 - markerRoom); tailLines*int64(len(fixedStamp)+len(" line 10000\n")) < minTail {
					t.Errorf("tail kept only %d lines, want about %d bytes", tailLines, minTail)
				}
			}
			if m, _ := filepath.Glob(path + ".tail-*"); len(m) > 0 {
				t.Errorf("tail chunks left: %v", m)
			}
		})
	}
}

func TestReadableWhileWriting(t *testing.T) {
	l := New(t.TempDir(), 20_000)
	w, _ := l.Create("1", "build")
	writeNumbered(t, w, 0, 5)
	if l.Done("1", "build") {
		t.Error("Done while writing")
	}
	f, err := l.Open("1", "build")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if got := strings.Count(string(b), "\n"); got != 5 {
		t.Errorf("open log shows %d lines while writing, want 5", got)
	}
	// Over the cap and still running: Tail shows the latest lines.
	writeNumbered(t, w, 5, 3000)
	lines, err := l.Tail("1", "build", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || !strings.HasSuffix(lines[2], " line 2999") {
		t.Errorf("live Tail = %q, want the last lines up to line 2999", lines)
	}
	w.Close()
	if !l.Done("1", "build") {
		t.Error("not Done after Close")
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	l := New(dir, 0)
	write := func(run, content string) {
		os.MkdirAll(filepath.Join(dir, run), 0o755)
		os.WriteFile(filepath.Join(dir, run, "build.log"), []byte(content), 0o644)
	}
	var big strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&big, "line %d\n", i)
	}
	write("big", big.String())
	write("small", "a\nb\nc\n")
	write("nonl", "a\nb")
	write("empty", "")
	write("long", strings.Repeat("y", 100_000)+"\nz\n")
	tests := []struct {
		run  string
		n    int
		want []string
	}{
		{"big", 3, []string{"line 19997", "line 19998", "line 19999"}},
		{"small", 2, []string{"b", "c"}},
		{"small", 10, []string{"a", "b", "c"}},
		{"small", 0, nil},
		{"nonl", 1, []string{"b"}},
		{"nonl", 5, []string{"a", "b"}},
		{"empty", 3, nil},
		{"long", 2, []string{strings.Repeat("y", 100_000), "z"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.run, tt.n), func(t *testing.T) {
			got, err := l.Tail(tt.run, "build", tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tail = %.60q, want %.60q", got, tt.want)
			}
		})
	}
	if _, err := l.Tail("nope", "build", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing log: %v", err)
	}
}

func TestFollow(t *testing.T) {
	l := New(t.TempDir(), 0)
	l.poll = 5 * time.Millisecond
	w, _ := l.Create("1", "build")
	fmt.Fprintln(w, "first")
	r, err := l.Follow(context.Background(), "1", "build", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		for i := range 50 {
			fmt.Fprintf(w, "line %d\n", i)
			time.Sleep(time.Millisecond)
		}
		w.Write([]byte("partial"))
		w.Close()
	}()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(l.dir, "1", "build.log"))
	if string(got) != string(want) || !strings.HasSuffix(string(got), " partial\n") {
		t.Errorf("followed %d bytes, file has %d; followed end %q", len(got), len(want), got[max(0, len(got)-40):])
	}

	t.Run("from offset", func(t *testing.T) {
		r, _ := l.Follow(context.Background(), "1", "build", int64(len(want)-8))
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != "partial\n" {
			t.Errorf("got %q", b)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		w2, _ := l.Create("1", "test")
		defer w2.Close()
		ctx, cancel := context.WithCancel(context.Background())
		r, _ := l.Follow(ctx, "1", "test", 0)
		defer r.Close()
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := l.Follow(context.Background(), "1", "deliver", 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestStagesAndNames(t *testing.T) {
	l := New(t.TempDir(), 0)
	for _, s := range []string{"build", "test", "deliver", "build"} {
		w, err := l.Create("12", s)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	got, err := l.Stages("12")
	if err != nil || !slices.Equal(got, []string{"build", "test", "deliver"}) {
		t.Errorf("Stages = %v, %v", got, err)
	}
	if got, err := l.Stages("13"); err != nil || len(got) != 0 {
		t.Errorf("unknown run: %v, %v", got, err)
	}
	for _, bad := range [][2]string{{"..", "build"}, {"1", "../x"}, {"1/2", "b"}, {"", "b"}, {"1", ""}, {"1", ".hidden"}} {
		t.Run(bad[0]+"|"+bad[1], func(t *testing.T) {
			if _, err := l.Create(bad[0], bad[1]); err == nil {
				t.Error("Create accepted a bad name")
			}
			if _, err := l.Open(bad[0], bad[1]); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open err = %v", err)
			}
		})
	}
	if _, err := l.Open("12", "push"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open missing stage: %v", err)
	}
}

func TestSealAfterCrash(t *testing.T) {
	l := New(t.TempDir(), 20_000)
	w, _ := l.Create("3", "build")
	writeNumbered(t, w, 0, 3000)
	// The process dies here: no Close. A new process seals the log.
	if err := l.Seal("3", "build"); err != nil {
		t.Fatal(err)
	}
	if !l.Done("3", "build") {
		t.Error("not done after Seal")
	}
	lines, _ := l.Tail("3", "build", 1)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " line 2999") {
		t.Errorf("last line after Seal = %q", lines)
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, "3", "build.log"))
	if !strings.Contains(string(b), "bytes cut] ...") {
		t.Error("no cut marker after Seal")
	}
}

func TestMemoryBounded50MB(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MB")
	}
	l := New(t.TempDir(), 4<<20)
	w, err := l.Create("1", "build")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	bw := bufio.NewWriterSize(w, 32<<10) // like a pipe copy: 32 KB writes
	var line [100]byte
	for i := range 520_000 { // ~50 MB of 100-byte lines
		n := copy(line[:], fmt.Sprintf("%09d ", i))
		for j := n; j < 99; j++ {
			line[j] = 'a' + byte(j%26)
		}
		line[99] = '\n'
		bw.Write(line[:])
		if i%50_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	bw.Flush()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapInuse)
	if grew := int64(peak) - int64(base); grew > 16<<20 {
		t.Errorf("heap grew by %d MB while writing 50 MB", grew>>20)
	}
	fi, _ := os.Stat(filepath.Join(l.dir, "1", "build.log"))
	if fi.Size() > 4<<20 {
		t.Errorf("log %d bytes over the 4 MB cap", fi.Size())
	}
	last, _ := l.Tail("1", "build", 1)
	if len(last) != 1 || !strings.Contains(last[0], " 000519999 ") {
		t.Errorf("last line %q", last)
	}
}

func TestSplitLine(t *testing.T) {
	tests := []struct {
		line, text string
		ok         bool
	}{
		{fixedStamp + " hello world", "hello world", true},
		{fixedStamp + " ", "", true},
		{"no timestamp here", "no timestamp here", false},
		{"2026-13-99T00:00:00Z x", "2026-13-99T00:00:00Z x", false},
		{"12 lines", "12 lines", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			ts, text, ok := SplitLine(tt.line)
			if text != tt.text || ok != tt.ok || ok && !ts.Equal(fixed) {
				t.Errorf("SplitLine = %v, %q, %v", ts, text, ok)
			}
		})
	}
}

package tailbuf

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		w      func() *Writer
		writes []string
		out    string
		tail   []string
	}{
		{"lines", func() *Writer { return &Writer{Lines: 2} }, []string{"a\nb", "\nc\n"}, "a\nb\nc\n", []string{"b", "c"}},
		{"partial last line", func() *Writer { return &Writer{} }, []string{"a\nb"}, "a\nb", []string{"a", "b"}},
		{"long line cut", func() *Writer { return &Writer{LineCap: 3} }, []string{"abcdef", "gh\nxy"}, "abcdefgh\nxy", []string{"abc [line cut]", "xy"}},
		{"limit", func() *Writer { return &Writer{Limit: 4} }, []string{"abc", "def\n"}, "abcd\ncccp: output cut after 4 bytes; the rest is not kept\n", []string{"abcdef"}},
		{"crlf", func() *Writer { return &Writer{} }, []string{"a\r\n"}, "a\r\n", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := tc.w()
			w.Out = &out
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if out.String() != tc.out {
				t.Errorf("out %q, want %q", out.String(), tc.out)
			}
			if got := w.Tail(); !slices.Equal(got, tc.tail) {
				t.Errorf("tail %q, want %q", got, tc.tail)
			}
		})
	}
}

// TestWriterMemory writes 256 MiB without a newline and then in lines:
// the heap grows by what the caps allow, not by what was written.
func TestWriterMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var out bytes.Buffer
	w := &Writer{Out: &out, Limit: 1 << 20}
	chunk := []byte(strings.Repeat("x", 1<<20))
	for range 128 {
		w.Write(chunk)
	}
	line := []byte(strings.Repeat("y", 1023) + "\n")
	for range 128 << 10 {
		w.Write(line)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("256 MiB written; heap grew by %d KiB; %d bytes passed on", grown>>10, out.Len())
	if grown > 8<<20 {
		t.Errorf("heap grew by %d bytes", grown)
	}
	if total, cut := w.Total(); total != 256<<20 || !cut {
		t.Errorf("Total = %d, %v", total, cut)
	}
}

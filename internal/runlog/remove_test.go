package runlog

import (
	"errors"
	"testing"
)

func TestRemove(t *testing.T) {
	l := New(t.TempDir(), 0)
	for _, id := range []string{"1", "2"} {
		w, err := l.Create(id, "build")
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("line\n"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Remove("1"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := l.Open("1", "build"); !errors.Is(err, ErrNotFound) {
		t.Errorf("log of removed run: %v, want ErrNotFound", err)
	}
	if f, err := l.Open("2", "build"); err != nil {
		t.Errorf("other run's log: %v", err)
	} else {
		f.Close()
	}
	if err := l.Remove("3"); err != nil {
		t.Errorf("Remove of a run without logs: %v", err)
	}
	for _, bad := range []string{"..", "", "../x", "a/b"} {
		if err := l.Remove(bad); err == nil {
			t.Errorf("Remove(%q) accepted", bad)
		}
	}
}

package intake

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// A stranger who declares a large Content-Length and sends a few bytes
// must not make the server allocate the declared length up front: the
// signature (GitHub, Gitea) can only be checked once the body is read.
func TestReadBodyDoesNotTrustTheDeclaredLength(t *testing.T) {
	const declared = 24 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readBody(strings.NewReader("{\"zen\":"), declared, 25<<20, nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: err %v, want io.ErrUnexpectedEOF", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > declared/4 {
		t.Errorf("allocated %d bytes for a body of 7 bytes that declared %d", got, declared)
	}
}

func TestReadBody(t *testing.T) {
	big := bytes.Repeat([]byte("x"), maxPooled+10)
	for _, tc := range []struct {
		name    string
		body    []byte
		n, max  int64
		wantErr error
	}{
		{"declared, small", []byte("hello"), 5, 100, nil},
		{"declared, larger than pooled", big, int64(len(big)), int64(len(big)), nil},
		{"declared, larger than pooled, short", big[:100], int64(len(big)), int64(len(big)), io.ErrUnexpectedEOF},
		{"unknown length", []byte("hello"), -1, 100, nil},
		{"unknown length, too large", []byte("hello"), -1, 3, errTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(bytes.NewReader(tc.body), tc.n, tc.max, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && !bytes.Equal(got, tc.body) {
				t.Errorf("read %d bytes, want %d", len(got), len(tc.body))
			}
		})
	}
}

package hmacsig

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"ref":"refs/heads/main"}`)
	// From RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
	const rfc = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	good := Sum(secret, body)
	tests := []struct {
		name         string
		secret, body []byte
		sig          string
		want         error
	}{
		{name: "rfc 4231 case 2", secret: []byte("Jefe"), body: []byte("what do ya want for nothing?"), sig: rfc},
		{name: "upper-case hex", secret: []byte("Jefe"), body: []byte("what do ya want for nothing?"), sig: strings.ToUpper(rfc)},
		{name: "own sum", secret: secret, body: body, sig: good},
		{name: "other secret", secret: []byte("other"), body: body, sig: good, want: ErrMismatch},
		{name: "other body", secret: secret, body: []byte("{}"), sig: good, want: ErrMismatch},
		{name: "truncated", secret: secret, body: body, sig: good[:62], want: ErrMismatch},
		{name: "empty", secret: secret, body: body, sig: "", want: ErrMismatch},
		{name: "prefixed", secret: secret, body: body, sig: "sha256=" + good, want: ErrNotHex},
		{name: "odd length", secret: secret, body: body, sig: good[:63], want: ErrNotHex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(tt.secret, tt.body, tt.sig); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSumIsRFC4231(t *testing.T) {
	got := Sum([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if got != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Sum = %s", got)
	}
}

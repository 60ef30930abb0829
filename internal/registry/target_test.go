package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr string
	}{
		{in: "quay.io", want: Target{Host: "quay.io"}},
		{in: "quay.io/cccp", want: Target{Host: "quay.io", Prefix: "cccp"}},
		{in: "registry.example.com:5000/team/images/", want: Target{Host: "registry.example.com:5000", Prefix: "team/images"}},
		{in: "127.0.0.1:5000", want: Target{Host: "127.0.0.1:5000"}},
		{in: "localhost", want: Target{Host: "localhost"}},
		{in: "myhost:5000/a-b_c.d", want: Target{Host: "myhost:5000", Prefix: "a-b_c.d"}},
		{in: "[::1]:5000/x", want: Target{Host: "[::1]:5000", Prefix: "x"}},
		{in: "", wantErr: "empty"},
		{in: "https://quay.io", wantErr: "drop the https:// scheme"},
		{in: "myhost/cccp", wantErr: "needs a dot or a :PORT"},
		{in: "quay.io:0", wantErr: "port \"0\""},
		{in: "quay.io:http", wantErr: "port \"http\""},
		{in: "quay.io:99999", wantErr: "port \"99999\""},
		{in: "::1", wantErr: "malformed port"},
		{in: "/cccp", wantErr: "no host"},
		{in: "quay.io/Team", wantErr: "prefix part \"Team\""},
		{in: "quay.io//x", wantErr: "prefix part \"\""},
		{in: "quay.io/x:tag", wantErr: "prefix part \"x:tag\""},
		{in: "quay.io/x@sha256:00", wantErr: "'@'"},
		{in: "bad_host.io", wantErr: "not a valid host name"},
		{in: "-x.io", wantErr: "not a valid host name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadTarget) {
					t.Fatalf("ParseTarget(%q) = %+v, %v; want error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestTargetRefs(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, target, repo string
		ref, digestRef     string
	}{
		{"app namespace", "quay.io/cccp", "myapp/web", "quay.io/cccp/myapp/web:rc", "quay.io/cccp/myapp/web@" + d},
		{"library at root", "127.0.0.1:5000", "busybox", "127.0.0.1:5000/busybox:rc", "127.0.0.1:5000/busybox@" + d},
	}
	c := NewClient(ClientConfig{AuthFiles: []string{}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := ParseTarget(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := tg.Ref(tt.repo, "rc"); got != tt.ref {
				t.Errorf("Ref = %q, want %q", got, tt.ref)
			}
			if got := tg.DigestRef(tt.repo, d); got != tt.digestRef {
				t.Errorf("DigestRef = %q, want %q", got, tt.digestRef)
			}
			// The references parse back to the same registry.
			for _, s := range []string{tg.Ref(tt.repo, "rc"), tg.DigestRef(tt.repo, d)} {
				r, err := c.parseRef(s)
				if err != nil {
					t.Fatal(err)
				}
				if r.Context().RegistryStr() != tg.Host {
					t.Errorf("%s parses to registry %q, want %q", s, r.Context().RegistryStr(), tg.Host)
				}
			}
		})
	}
}

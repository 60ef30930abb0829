package redact

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestMaskerString(t *testing.T) {
	m := NewMasker("s3cr3t-token", "abc", "hunter22", "hunter2", "")
	tests := []struct {
		name, in, want string
	}{
		{"plain", "nothing to hide", "nothing to hide"},
		{"secret", "token=s3cr3t-token;", "token=***;"},
		{"twice", "s3cr3t-tokens3cr3t-token", "******"},
		{"short secret ignored", "abc abc", "abc abc"},
		{"longest wins", "pw hunter22 hunter2", "pw *** ***"},
		{"url password", "clone https://user:pa55@github.com/org/app.git failed", "clone https://user:***@github.com/org/app.git failed"},
		{"url password with secret user", "https://hunter22:x@h", "https://***:***@h"},
		{"url user only kept", "ssh://git@github.com/org/app", "ssh://git@github.com/org/app"},
		{"url secret user only", "https://s3cr3t-token@github.com", "https://***@github.com"},
		{"url unknown token alone", "fatal: could not read from https://ghp_0123456789abcdefXYZ@github.com/org/app.git", "fatal: could not read from https://***@github.com/org/app.git"},
		{"url gitlab oauth2 user", "https://oauth2@gitlab.example/g/app", "https://***@gitlab.example/g/app"},
		{"url empty user kept", "https://@host/x", "https://@host/x"},
		{"image digest kept", "docker.io/library/busybox:latest@sha256:abcd", "docker.io/library/busybox:latest@sha256:abcd"},
		{"url no userinfo", "https://github.com/a:b/c@d", "https://github.com/a:b/c@d"},
		{"url empty password", "https://user:@host", "https://user:@host"},
		{"two urls", "a://u:p@h b://v:q@i", "a://u:***@h b://v:***@i"},
		{"secret at end", "x hunter2", "x ***"},
		{"secret prefix at end", "x hunter", "x hunter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskerWriter(t *testing.T) {
	m := NewMasker("s3cr3t-token")
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"secret split", []string{"a s3cr", "3t-tok", "en b\n"}, "a *** b\n"},
		{"byte by byte", strings.Split("x s3cr3t-token y", ""), "x *** y"},
		{"url split", []string{"https://us", "er:pa", "ss@host\n"}, "https://user:***@host\n"},
		{"token alone split", []string{"https://ghp_01", "23456789@gith", "ub.com/x\n"}, "https://***@github.com/x\n"},
		{"prefix then other", []string{"s3cr3t", "-tokex"}, "s3cr3t-tokex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := m.Writer(&buf)
			for _, c := range tt.chunks {
				if _, err := w.Write([]byte(c)); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(buf.String(), "s3cr3t-token") || strings.Contains(buf.String(), "pass") {
					t.Fatalf("secret leaked mid-stream: %q", buf.String())
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got %q, want %q", buf.String(), tt.want)
			}
		})
	}
}

func TestMaskerWriterPassesLinesPromptly(t *testing.T) {
	var buf bytes.Buffer
	w := NewMasker("s3cr3t-token").Writer(&buf)
	w.Write([]byte("line one\nline two\n"))
	if buf.String() != "line one\nline two\n" {
		t.Errorf("complete lines held back: %q", buf.String())
	}
}

func TestStripANSI(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"none", "plain", "plain"},
		{"colour", "\x1b[31merror\x1b[0m: x", "error: x"},
		{"bold 256", "\x1b[1;38;5;208mwarn\x1b[m", "warn"},
		{"cursor", "a\x1b[2Kb\x1b[1A", "ab"},
		{"osc title", "\x1b]0;title\x07text", "text"},
		{"osc link", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"charset", "\x1b(Bx", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StripANSI(tt.in)
			if got != tt.want {
				t.Errorf("StripANSI(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"password", "https://user:pass@github.com/org/app.git", "https://user:***@github.com/org/app.git"},
		{"token user", "https://ghp_abcdef@github.com/org/app", "https://***@github.com/org/app"},
		{"none", "https://github.com/org/app", "https://github.com/org/app"},
		{"unparsable", "https://u:p@h\x7f/x", "https://u:***@h\x7f/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzMaskerWriter(f *testing.F) {
	f.Add("prefix s3cr3t-token middle https://u:p@h/x hunter2 end", uint64(12345))
	f.Add("s3cr3ts3cr3t-token://a:b@", uint64(7))
	f.Add("hunter22hunter2", uint64(1))
	m := NewMasker("s3cr3t-token", "hunter2", "hunter22", "ter2hun", "::@@")
	f.Fuzz(func(t *testing.T, in string, seed uint64) {
		want := m.String(in)
		var buf bytes.Buffer
		w := m.Writer(&buf)
		rest := in
		for len(rest) > 0 {
			n := int(seed%7) + 1
			seed = seed*6364136223846793005 + 1442695040888963407
			n = min(n, len(rest))
			if _, err := w.Write([]byte(rest[:n])); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("streamed %q, whole %q (input %q)", buf.String(), want, in)
		}
		for _, s := range []string{"s3cr3t-token", "hunter2"} {
			if strings.Contains(want, s) {
				t.Errorf("String(%q) = %q still holds %q", in, want, s)
			}
		}
	})
}

func BenchmarkMaskerWriter(b *testing.B) {
	m := NewMasker("s3cr3t-token", "ghp_0123456789abcdef", "glpat-abcdefghij")
	chunk := []byte(strings.Repeat("Step 3/7 : RUN dnf -y install httpd && curl https://example.com/x:y\n", 500))
	b.SetBytes(int64(len(chunk)))
	w := m.Writer(io.Discard)
	for b.Loop() {
		w.Write(chunk)
	}
}

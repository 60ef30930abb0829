// Package redact masks secrets in text and streams, strips terminal escape
// codes and cuts text at UTF-8 boundaries, for everything that leaves cccp
// (logs, comments, errors).
package redact

import (
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask is what every secret is replaced with.
const Mask = "***"

// minSecret is the shortest secret a Masker masks.
const minSecret = 4

// maxUserinfo bounds the password part of a URL userinfo the Masker looks
// for; it also bounds how much a masking Writer holds back.
const maxUserinfo = 1024

// Masker replaces known secret values with "***". It is safe for
// concurrent use; it holds no mutable state.
type Masker struct {
	secrets []string  // longest first, deduplicated
	first   [256]bool // first bytes of secrets, and ':' for URL userinfo
}

// NewMasker returns a Masker for the given secrets. Secrets shorter than 4
// bytes are ignored (masking them would garble ordinary text). The Masker
// also masks the password of URL userinfo (https://user:pass@host ->
// https://user:***@host).
func NewMasker(secrets ...string) *Masker {
	m := &Masker{}
	for _, s := range secrets {
		if len(s) >= minSecret && !slices.Contains(m.secrets, s) {
			m.secrets = append(m.secrets, s)
		}
	}
	// Longest first, so at one position the longest secret wins.
	slices.SortStableFunc(m.secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range m.secrets {
		m.first[s[0]] = true
	}
	m.first[':'] = true
	return m
}

// String returns s with each secret replaced by "***".
func (m *Masker) String(s string) string {
	var b strings.Builder
	m.mask(&b, s, true)
	return b.String()
}

// mask writes the masked form of s to b and returns how many bytes of s it
// consumed. Unless final, it stops before a position whose outcome depends
// on bytes not yet seen (a possible secret prefix or URL userinfo at the
// end of s), so a stream masked piece by piece gives the same output as
// the whole text masked at once.
func (m *Masker) mask(b *strings.Builder, s string, final bool) int {
	start := 0 // s[start:i] is plain text not yet written
	for i := 0; i < len(s); {
		if !m.first[s[i]] {
			i++
			continue
		}
		n, out, wait := m.matchAt(s[i:], final)
		if wait {
			b.WriteString(s[start:i])
			return i
		}
		if n == 0 {
			i++
			continue
		}
		b.WriteString(s[start:i])
		b.WriteString(out)
		i += n
		start = i
	}
	b.WriteString(s[start:])
	return len(s)
}

// matchAt decides what happens at the start of rest: n bytes replaced by
// out, n == 0 for no match, or wait when more input could change that.
func (m *Masker) matchAt(rest string, final bool) (n int, out string, wait bool) {
	for _, sec := range m.secrets {
		if strings.HasPrefix(rest, sec) {
			return len(sec), Mask, false
		}
		if !final && len(rest) < len(sec) && strings.HasPrefix(sec, rest) {
			return 0, "", true
		}
	}
	if rest[0] == ':' {
		return m.userinfoAt(rest, final)
	}
	return 0, "", false
}

// userinfoAt matches "://user:password@" or "://token@" at the start of
// rest (rest starts with ':') and returns it masked: the password, and the
// user part for secrets; a userinfo without a password is usually a token
// (https://TOKEN@host) and is masked whole, except ssh's conventional login
// "git" (ssh://git@host). "image:tag@sha256:..." has no "://" and stays.
func (m *Masker) userinfoAt(rest string, final bool) (int, string, bool) {
	const sep = "://"
	if len(rest) < len(sep) {
		if !final && strings.HasPrefix(sep, rest) {
			return 0, "", true
		}
		return 0, "", false
	}
	if !strings.HasPrefix(rest, sep) {
		return 0, "", false
	}
	colon := -1
	for j := len(sep); j < len(rest); j++ {
		c := rest[j]
		switch {
		case c == '@':
			if colon < 0 {
				user := rest[len(sep):j]
				if user == "" || user == "git" {
					return 0, "", false
				}
				return j + 1, sep + Mask + "@", false // a token alone
			}
			if j == colon+1 {
				return 0, "", false // no password
			}
			user := rest[len(sep):colon]
			return j + 1, sep + m.secretsOnly(user) + ":" + Mask + "@", false
		case c == ':' && colon < 0:
			colon = j
		case isAuthorityEnd(c):
			return 0, "", false
		}
		if j > 2*maxUserinfo {
			return 0, "", false
		}
	}
	return 0, "", !final
}

// secretsOnly masks the secrets in s, which holds no "://".
func (m *Masker) secretsOnly(s string) string {
	var b strings.Builder
	m.mask(&b, s, true)
	return b.String()
}

func isAuthorityEnd(c byte) bool {
	switch c {
	case '/', '?', '#', ' ', '\t', '\n', '\r', '\v', '\f', '"', '\'', '<', '>', '`', '\\':
		return true
	}
	return false
}

// Writer returns a writer that masks what is written to it before passing it
// to w, also when a secret spans two writes. Close flushes the held-back
// carry; it does not close w.
func (m *Masker) Writer(w io.Writer) io.WriteCloser { return &maskWriter{m: m, w: w} }

type maskWriter struct {
	m     *Masker
	w     io.Writer
	carry []byte
	out   strings.Builder
}

func (mw *maskWriter) Write(p []byte) (int, error) {
	mw.carry = append(mw.carry, p...)
	mw.out.Reset()
	n := mw.m.mask(&mw.out, string(mw.carry), false)
	if _, err := io.WriteString(mw.w, mw.out.String()); err != nil {
		return 0, err
	}
	mw.carry = append(mw.carry[:0], mw.carry[n:]...)
	return len(p), nil
}

func (mw *maskWriter) Close() error {
	mw.out.Reset()
	mw.m.mask(&mw.out, string(mw.carry), true)
	mw.carry = mw.carry[:0]
	_, err := io.WriteString(mw.w, mw.out.String())
	return err
}

var ansiRE = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+][0-9A-Za-z]|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]`)

// StripANSI removes ANSI/VT100 escape sequences (CSI such as colours and
// cursor moves, OSC such as window titles and hyperlinks) from s.
func StripANSI(s string) string {
	if !strings.ContainsAny(s, "\x1b\u009b") {
		return s
	}
	return ansiRE.ReplaceAllString(s, "")
}

// URL returns u with its userinfo redacted for errors and logs: a password
// becomes "***" (https://user:***@host), and a user-only userinfo, which is
// usually a token (https://TOKEN@host), becomes "***" as well. Text that
// does not parse as a URL is masked by shape.
func URL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return NewMasker().String(u)
	}
	// url.Userinfo would escape "***", so splice the userinfo in.
	ui := Mask
	if _, ok := p.User.Password(); ok {
		ui = url.User(p.User.Username()).String() + ":" + Mask
	}
	p.User = nil
	return strings.Replace(p.String(), "//", "//"+ui+"@", 1)
}

// Package redact masks secrets in text and streams, strips terminal escape
// codes and cuts text at UTF-8 boundaries, for everything that leaves cccp
// (logs, comments, errors).
package redact

import "io"

// Masker replaces known secret values with "***".
type Masker struct{}

// NewMasker returns a Masker for the given secrets. Secrets shorter than 4
// bytes are ignored (masking them would garble ordinary text). The Masker
// also masks the password of URL userinfo (https://user:pass@host ->
// https://user:***@host).
func NewMasker(secrets ...string) *Masker { panic("TODO") }

// String returns s with each secret replaced by "***".
func (m *Masker) String(s string) string { panic("TODO") }

// Writer returns a writer that masks what is written to it before passing it
// to w, also when a secret spans two writes. Close flushes the held-back
// carry; it does not close w.
func (m *Masker) Writer(w io.Writer) io.WriteCloser { panic("TODO") }

// StripANSI removes ANSI/VT100 escape sequences from s.
func StripANSI(s string) string { panic("TODO") }

// TruncateUTF8 returns s cut to at most maxBytes bytes, at a rune boundary.
func TruncateUTF8(s string, maxBytes int) string { panic("TODO") }

// URL returns u with the userinfo password replaced by "***" (and a
// user-only userinfo, typically a token, replaced too), for errors and logs.
func URL(u string) string { panic("TODO") }

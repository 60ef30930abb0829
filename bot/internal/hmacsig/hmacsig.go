// Package hmacsig computes and checks the hex HMAC-SHA256 of a webhook body,
// the signature GitHub (after a "sha256=" prefix) and Gitea/Forgejo (bare)
// send. Header names, prefixes and error messages stay with each forge.
package hmacsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// Errors returned by Check.
var (
	// ErrNotHex means the signature is not hexadecimal.
	ErrNotHex = errors.New("signature not hex")
	// ErrMismatch means the signature is not the body's HMAC under the secret.
	ErrMismatch = errors.New("signature does not match")
)

// Sum returns the lower-case hex HMAC-SHA256 of body under secret.
func Sum(secret, body []byte) string {
	return hex.EncodeToString(mac(secret, body))
}

// Check reports whether hexSig is the hex HMAC-SHA256 of body under secret,
// comparing in constant time. It returns ErrNotHex or ErrMismatch.
func Check(secret, body []byte, hexSig string) error {
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrNotHex
	}
	if !hmac.Equal(got, mac(secret, body)) {
		return ErrMismatch
	}
	return nil
}

func mac(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

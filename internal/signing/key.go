// Package signing makes and checks cosign-compatible signatures and
// attestations of image digests with a key cccp holds.
//
// The key is ECDSA P-256. On one machine it is generated at first start
// into DATA/signing/cosign.key (PKCS#8 PEM, mode 0600, not encrypted: like
// the registry's push credentials it is protected by the file's mode and by
// keeping repository code from reading cccp's files, and a password kept
// beside it would protect nothing) with the public key beside it as
// DATA/signing/cosign.pub (PKIX PEM, what `cosign verify --key` reads). In a
// cluster the private key comes from a Secret mounted as a file
// (LoadKey); the public key is derived from it.
//
// Signatures follow cosign's layout in the image's own repository, so they
// hold for every tag the digest gets:
//
//	sha256-<hex>.sig  image; each layer a simple-signing payload
//	                  (application/vnd.dev.cosign.simplesigning.v1+json)
//	                  with its signature in the
//	                  dev.cosignproject.cosign/signature annotation
//	sha256-<hex>.att  image; each layer a DSSE envelope
//	                  (application/vnd.dsse.envelope.v1+json) with the
//	                  statement's type in the predicateType annotation
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// File names inside the signing folder.
const (
	PrivateKeyFile = "cosign.key"
	PublicKeyFile  = "cosign.pub"
)

// Key is cccp's signing key.
type Key struct {
	sv     signature.SignerVerifier
	pubPEM []byte
	id     string
}

// LoadOrCreateKey reads dir/cosign.key, or generates a new P-256 key into
// it (0600) when there is none, and (re)writes dir/cosign.pub beside it.
func LoadOrCreateKey(dir string, log *slog.Logger) (*Key, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dir, PrivateKeyFile)
	k, err := LoadKey(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k, err = createKey(dir, path)
		if err != nil {
			return nil, err
		}
		log.Info("generated signing key", "path", path, "key", k.ID())
	case err != nil:
		return nil, err
	}
	pub := filepath.Join(dir, PublicKeyFile)
	if old, err := os.ReadFile(pub); err != nil || string(old) != string(k.pubPEM) {
		if err := writeFile(pub, k.pubPEM, 0o644); err != nil {
			return nil, fmt.Errorf("write signing public key: %w", err)
		}
	}
	return k, nil
}

func createKey(dir, path string) (*Key, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create signing folder: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// O_EXCL: two processes starting at once must not each write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	return newKey(priv)
}

// LoadKey reads an unencrypted ECDSA P-256 private key in PEM (PKCS#8
// "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"), for instance a Secret mounted
// as a file. A key file others may read is refused.
func LoadKey(path string) (*Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 && st.Mode().IsRegular() {
		return nil, fmt.Errorf("signing key %s: mode %v lets others read it; chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return k, nil
}

// ParseKey parses an unencrypted ECDSA P-256 private key in PEM. Its
// error never contains the key.
func ParseKey(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		return nil, errors.New("an encrypted cosign key; give cccp an unencrypted PKCS#8 key (openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt)")
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the private key does not parse")
	}
	ec, ok := priv.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return newKey(ec)
}

func newKey(priv *ecdsa.PrivateKey) (*Key, error) {
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return &Key{sv: sv, pubPEM: pubPEM, id: keyID(priv.Public())}, nil
}

// keyID is the hex SHA-256 of the public key's DER (a fingerprint people
// can compare).
func keyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// PublicKeyPEM returns the public key as PKIX PEM.
func (k *Key) PublicKeyPEM() []byte { return append([]byte(nil), k.pubPEM...) }

// ID returns the SHA-256 fingerprint of the public key.
func (k *Key) ID() string { return k.id }

// Verifier returns a Verifier for the key's public half.
func (k *Key) Verifier() *Verifier { return &Verifier{v: k.sv, id: k.id} }

// String names the key by its fingerprint; it never prints the key.
func (k *Key) String() string { return "signing key " + k.id }

// LogValue keeps the key out of log lines.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Verifier checks signatures against one public key.
type Verifier struct {
	v  signature.Verifier
	id string
}

// ParsePublicKey parses a PKIX PEM public key (cosign.pub, or what
// /api/v1/signing-key serves).
func ParsePublicKey(data []byte) (*Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key: not ECDSA")
	}
	v, err := signature.LoadECDSAVerifier(ec, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return &Verifier{v: v, id: keyID(ec)}, nil
}

// ID returns the SHA-256 fingerprint of the public key.
func (v *Verifier) ID() string { return v.id }

// writeFile writes data to path atomically (a temporary file renamed).
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

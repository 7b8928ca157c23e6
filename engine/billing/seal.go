package billing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretKeyEnv names the variable holding the key that seals the Stripe
// secrets in the store. Unset, they are stored in plain text; set, every
// meterd process sharing the store needs the same value. It is read once,
// at start (server/config), and reaches the settings as a Sealer.
const SecretKeyEnv = "METERD_SECRET_KEY"

// ErrSecretKey is a fault of SecretKeyEnv: too short, or not the key the
// stored secrets were sealed with.
var ErrSecretKey = errors.New("billing: " + SecretKeyEnv)

const sealedPrefix = "sealed:v1:"

// minSecretKey is the shortest key accepted: it must be random, not a
// password (`openssl rand -base64 32`).
const minSecretKey = 32

// Sealer seals and opens the secret fields of the settings with
// AES-256-GCM under a key derived from SecretKeyEnv's value. A nil Sealer
// (no key) stores them in plain text and opens only plain text.
type Sealer struct{ aead cipher.AEAD }

// NewSealer makes the Sealer of a secret key: nil for an empty one, an
// ErrSecretKey for one too short.
func NewSealer(secret string) (*Sealer, error) {
	if secret == "" {
		return nil, nil
	}
	if len(secret) < minSecretKey {
		return nil, fmt.Errorf("%w must be at least %d random characters (openssl rand -base64 32)", ErrSecretKey, minSecretKey)
	}
	key := sha256.Sum256([]byte(secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead}, nil
}

// seal returns value sealed for field (the field is authenticated, so a
// sealed key cannot be moved into the other field).
func (s *Sealer) seal(field, value string) string {
	if s == nil || value == "" {
		return value
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(value), []byte(field))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// open reverses seal; a value stored in plain text comes back as it is.
func (s *Sealer) open(field, value string) (string, error) {
	if !strings.HasPrefix(value, sealedPrefix) {
		return value, nil
	}
	if s == nil {
		return "", fmt.Errorf("%w is not set here, but the Stripe secrets are sealed with it: set it to the value the other meterd processes use", ErrSecretKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(value[len(sealedPrefix):])
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", fmt.Errorf("billing: sealed %s is damaged", field)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(field))
	if err != nil {
		return "", fmt.Errorf("%w is not the key the Stripe secrets are sealed with: set it to the value the other meterd processes use", ErrSecretKey)
	}
	return string(plain), nil
}

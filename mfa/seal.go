package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// KeyLen is the length of key ring keys: AES-256.
const KeyLen = 32

const maxKeyIDLen = 32

type ringKey struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// Keyring holds the AES-256-GCM keys that seal device secrets. The first key
// seals; every key opens, so keys rotate online: put the new key first, keep
// an old one while anything still uses it: a row NeedsReseal is true for, a
// keyed hash or a LinkToken made with it, a Temporal payload sealed with it
// (`mfaflow keys status` reports them). Its printed, JSON and slog forms
// show key ids only; Encode is the one way to get the keys.
type Keyring struct {
	keys []ringKey
}

// Sealed is a secret encrypted by a Keyring: the id of the key and
// nonce || ciphertext || tag. Its printed, JSON and slog forms show only the
// key id and the length.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

func keyringErr(entry int, reason string) error {
	return fmt.Errorf("%w: entry %d: %s", ErrInvalidKeyring, entry, reason)
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseKeyring parses "id:base64key,id2:base64key" (MFAFLOW_SECRET_KEYS): ids
// of 1–32 characters [A-Za-z0-9_-], unique; keys of exactly 32 bytes in
// standard or URL-safe base64, padded or not. The first key seals. Errors
// wrap ErrInvalidKeyring, name the entry by position and never contain key
// material or ids.
func ParseKeyring(s string) (*Keyring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidKeyring)
	}
	var ring Keyring
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		n := i + 1
		id, b64, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, keyringErr(n, "want id:base64key")
		}
		if !validKeyID(id) {
			return nil, keyringErr(n, "key id must be 1-32 characters of A-Z a-z 0-9 _ -")
		}
		if seen[id] {
			return nil, keyringErr(n, "duplicate key id")
		}
		seen[id] = true
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, keyringErr(n, "key is not valid base64")
		}
		if len(raw) != KeyLen {
			return nil, keyringErr(n, "key must be 32 bytes")
		}
		k, err := newRingKey(id, raw)
		if err != nil {
			return nil, keyringErr(n, "cannot use key")
		}
		ring.keys = append(ring.keys, k)
	}
	return &ring, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, ErrInvalidKeyring
}

func newRingKey(id string, raw []byte) (ringKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return ringKey{}, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return ringKey{}, err
	}
	return ringKey{id: id, raw: raw, aead: aead}, nil
}

// GenerateKeyring returns a ring with one new random key whose id is "k"
// followed by 8 random hex digits. It returns an error if crypto/rand fails.
func GenerateKeyring() (*Keyring, error) {
	var b [KeyLen + 4]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return nil, fmt.Errorf("mfa: generate keyring: %w", err)
	}
	k, err := newRingKey("k"+hex.EncodeToString(b[KeyLen:]), append([]byte(nil), b[:KeyLen]...))
	clear(b[:])
	if err != nil {
		return nil, fmt.Errorf("mfa: generate keyring: %w", err)
	}
	return &Keyring{keys: []ringKey{k}}, nil
}

// Encode returns the ring in the form ParseKeyring reads, keys included.
// Only the dev stack persisting its generated ring should call it.
func (k *Keyring) Encode() string {
	var b strings.Builder
	for i, key := range k.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(key.id)
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(key.raw))
	}
	return b.String()
}

// CurrentID returns the id of the key that seals.
func (k *Keyring) CurrentID() string {
	if k == nil || len(k.keys) == 0 {
		return ""
	}
	return k.keys[0].id
}

// IDs returns the key ids, the sealing key first.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.id
	}
	return ids
}

// String returns the key ids only.
func (k *Keyring) String() string {
	if k == nil {
		return "mfa.Keyring(nil)"
	}
	return "mfa.Keyring{ids: [" + strings.Join(k.IDs(), " ") + "], keys: " + redacted + "}"
}

// GoString returns the key ids only.
func (k *Keyring) GoString() string { return k.String() }

// Format writes the key ids only, for every verb.
func (k *Keyring) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// MarshalJSON returns the key ids only.
func (k *Keyring) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", k.String())), nil
}

// LogValue returns the key ids only.
func (k *Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

// AAD returns additional data binding a sealed value to one row, so a value
// copied into another row (or table) does not open.
func AAD(table, rowID string) []byte {
	b := make([]byte, 0, 16+len(table)+len(rowID)+16)
	b = append(b, "mfaflow/seal/v1\x00"...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(table)))
	b = append(b, table...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(rowID)))
	return append(b, rowID...)
}

// Seal encrypts plaintext with the current key (AES-256-GCM, random 96-bit
// nonce prepended) bound to aad, normally AAD(table, rowID). It does not
// fail with a valid ring; the error is for a nil or empty ring.
func (k *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	if k == nil || len(k.keys) == 0 {
		return Sealed{}, ErrUnknownKey
	}
	key := k.keys[0]
	return Sealed{KeyID: key.id, Ciphertext: key.aead.Seal(nil, nil, plaintext, aad)}, nil
}

// Open decrypts s with the key it names. It returns ErrUnknownKey when the
// key id is not in the ring and ErrOpen when s does not authenticate with aad.
func (k *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	key, ok := k.find(s.KeyID)
	if !ok {
		return nil, ErrUnknownKey
	}
	pt, err := key.aead.Open(nil, nil, s.Ciphertext, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// NeedsReseal reports whether s was sealed by a key other than the current
// one and should be resealed (Reseal) to finish a rotation.
func (k *Keyring) NeedsReseal(s Sealed) bool {
	return k == nil || len(k.keys) == 0 || s.KeyID != k.keys[0].id
}

// DeriveKey returns a KeyLen-byte key for label, derived with HKDF-SHA256
// from the current (sealing) key, for uses such as HMAC keys of SMS code
// hashes. The same ring and label always give the same key; another label
// or another current key gives an unrelated one, so a rotation changes it.
// It returns nil for a nil or empty ring.
func (k *Keyring) DeriveKey(label string) []byte {
	if k == nil || len(k.keys) == 0 {
		return nil
	}
	out, err := hkdf.Key(sha256.New, k.keys[0].raw, []byte("mfaflow/derive/v1"), label, KeyLen)
	if err != nil { // only for lengths HKDF-SHA256 cannot produce
		panic("mfa: derive key: " + err.Error())
	}
	return out
}

// DeriveKeyFor is DeriveKey from the ring's key id rather than the current
// key, for keyed hashes stored with the key id of their row (recovery
// codes): a row hashed before a rotation still checks while its key is in
// the ring. It reports false when id is not in the ring.
func (k *Keyring) DeriveKeyFor(id, label string) ([]byte, bool) {
	key, ok := k.find(id)
	if !ok {
		return nil, false
	}
	out, err := hkdf.Key(sha256.New, key.raw, []byte("mfaflow/derive/v1"), label, KeyLen)
	if err != nil {
		panic("mfa: derive key: " + err.Error())
	}
	return out, true
}

// Reseal opens s and seals it again with the current key, with the same aad.
// It returns the errors of Open.
func (k *Keyring) Reseal(s Sealed, aad []byte) (Sealed, error) {
	pt, err := k.Open(s, aad)
	if err != nil {
		return Sealed{}, err
	}
	defer clear(pt)
	return k.Seal(pt, aad)
}

func (k *Keyring) find(id string) (ringKey, bool) {
	if k == nil {
		return ringKey{}, false
	}
	for _, key := range k.keys {
		if key.id == id {
			return key, true
		}
	}
	return ringKey{}, false
}

// String shows the key id and the ciphertext length only.
func (s Sealed) String() string {
	return fmt.Sprintf("mfa.Sealed{KeyID: %q, Ciphertext: [%d bytes]}", s.KeyID, len(s.Ciphertext))
}

// GoString shows the key id and the ciphertext length only.
func (s Sealed) GoString() string { return s.String() }

// Format writes the key id and the ciphertext length only, for every verb.
func (s Sealed) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// MarshalJSON writes the key id and the ciphertext length only; store the
// fields themselves.
func (s Sealed) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"key_id":%q,"ciphertext_len":%d}`, s.KeyID, len(s.Ciphertext))), nil
}

// LogValue returns the key id and the ciphertext length only.
func (s Sealed) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", s.KeyID), slog.Int("ciphertext_len", len(s.Ciphertext)))
}

package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Recovery code rules (SPEC §6b): a set has RecoveryCodeCount codes, each
// RecoveryCodeLen characters of RecoveryAlphabet, shown grouped in two
// halves ("7KQ4M-X2PRD").
const (
	RecoveryCodeCount = 10
	RecoveryCodeLen   = 10
	// RecoveryAlphabet has no character a reader confuses with another:
	// no 0/O, 1/I/L, U (read as V), no lower case. 30 symbols, so a code
	// carries about 49 bits; the account's failure budget keeps guessing
	// to at most 100 tries.
	RecoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// NewRecoveryCodes returns n recovery codes read from r (nil means
// crypto/rand), formatted for reading ("7KQ4M-X2PRD"), no two alike. Each
// symbol is drawn by rejection sampling, so no code is likelier than
// another. It returns the reader's error if it fails.
func NewRecoveryCodes(r io.Reader, n int) ([]string, error) {
	if r == nil {
		r = rand.Reader
	}
	const size = len(RecoveryAlphabet)
	const limit = 256 / size * size
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	buf := make([]byte, 32)
	for len(out) < n {
		var code [RecoveryCodeLen]byte
		for i := 0; i < RecoveryCodeLen; {
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, fmt.Errorf("mfa: read random recovery code: %w", err)
			}
			for _, b := range buf {
				if int(b) >= limit || i == RecoveryCodeLen {
					continue
				}
				code[i] = RecoveryAlphabet[int(b)%size]
				i++
			}
		}
		c := string(code[:RecoveryCodeLen/2]) + "-" + string(code[RecoveryCodeLen/2:])
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out, nil
}

// NormalizeRecoveryCode returns the code as it is hashed: upper case,
// without the group separator or spaces. It returns ErrMalformedCode for
// anything that is not RecoveryCodeLen symbols of RecoveryAlphabet.
func NormalizeRecoveryCode(s string) (string, error) {
	if len(s) > 3*RecoveryCodeLen {
		return "", ErrMalformedCode
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '-' || r == ' ':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 0x7f || !strings.ContainsRune(RecoveryAlphabet, r) {
			return "", ErrMalformedCode
		}
		b.WriteRune(r)
	}
	if b.Len() != RecoveryCodeLen {
		return "", ErrMalformedCode
	}
	return b.String(), nil
}

// HashRecoveryCode returns HMAC-SHA256(key, accountID, code), the value to
// store for a normalized recovery code: without the server key a leaked
// table cannot be brute-forced offline, and the account id binds the code
// to its account. The key should be 32 random bytes (Keyring.DeriveKeyFor).
func HashRecoveryCode(key []byte, accountID, code string) []byte {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	m.Write([]byte("mfaflow/recovery/v1\x00"))
	binary.BigEndian.PutUint64(n[:], uint64(len(accountID)))
	m.Write(n[:])
	m.Write([]byte(accountID))
	binary.BigEndian.PutUint64(n[:], uint64(len(code)))
	m.Write(n[:])
	m.Write([]byte(code))
	return m.Sum(nil)
}

// CheckRecoveryCode reports, in constant time, whether the normalized code
// is the one hashed into hash for accountID.
func CheckRecoveryCode(key []byte, accountID, code string, hash []byte) bool {
	return hmac.Equal(HashRecoveryCode(key, accountID, code), hash)
}

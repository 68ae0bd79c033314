package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// SMS verification code rules, for the challenge store and the workflows:
// a code has SMSCodeDigits digits, expires SMSCodeTTL after it is sent and
// is void after SMSCodeMaxTries wrong entries (each entry also spends the
// account's failure budget through Verifier.Attempt).
const (
	SMSCodeDigits   = 6
	SMSCodeTTL      = 5 * time.Minute
	SMSCodeMaxTries = 5
)

// NewSMSCode returns a uniformly random 6-digit code read from r; nil means
// crypto/rand. It uses rejection sampling, so no code is likelier than
// another. It returns the reader's error if it fails.
func NewSMSCode(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	const n = 1000000
	const limit = (1 << 32) / n * n // largest multiple of n that fits
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("mfa: read random sms code: %w", err)
		}
		if v := binary.BigEndian.Uint32(b[:]); v < limit {
			return formatCode(v%n, SMSCodeDigits), nil
		}
	}
}

// HashSMSCode returns HMAC-SHA256(key, challengeID, code), the value to store
// for an SMS challenge: without the server key a leaked table cannot be
// brute-forced offline, and the challenge id binds the code to one
// challenge. The key should be 32 random bytes.
func HashSMSCode(key []byte, challengeID, code string) []byte {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	m.Write([]byte("mfaflow/sms/v1\x00"))
	binary.BigEndian.PutUint64(n[:], uint64(len(challengeID)))
	m.Write(n[:])
	m.Write([]byte(challengeID))
	binary.BigEndian.PutUint64(n[:], uint64(len(code)))
	m.Write(n[:])
	m.Write([]byte(code))
	return m.Sum(nil)
}

// CheckSMSCode reports, in constant time, whether code is the code hashed
// into hash for challengeID.
func CheckSMSCode(key []byte, challengeID, code string, hash []byte) bool {
	return hmac.Equal(HashSMSCode(key, challengeID, code), hash)
}

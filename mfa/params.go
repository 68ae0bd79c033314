package mfa

import (
	"fmt"
	"strings"
	"time"
)

// Algorithm is the HMAC hash of an OTP device. The zero value is SHA1.
type Algorithm int

// Supported algorithms.
const (
	SHA1 Algorithm = iota
	SHA256
	SHA512
)

// Defaults and limits of Params.
const (
	DefaultDigits = 6
	DefaultPeriod = 30 * time.Second
)

// String returns "SHA1", "SHA256" or "SHA512" (the otpauth spelling).
func (a Algorithm) String() string {
	switch a {
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	case SHA512:
		return "SHA512"
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// ParseAlgorithm parses "SHA1", "SHA256" or "SHA512", case-insensitively, with
// an optional "HMAC-" prefix and an optional hyphen ("SHA-256"). It returns an
// error wrapping ErrInvalidParams for anything else.
func ParseAlgorithm(s string) (Algorithm, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	u = strings.TrimPrefix(u, "HMAC-")
	u = strings.Replace(u, "SHA-", "SHA", 1)
	switch u {
	case "SHA1":
		return SHA1, nil
	case "SHA256":
		return SHA256, nil
	case "SHA512":
		return SHA512, nil
	}
	return 0, fmt.Errorf("%w: unsupported algorithm", ErrInvalidParams)
}

func (a Algorithm) valid() bool { return a >= SHA1 && a <= SHA512 }

// Params are the parameters of an OTP device. The zero value means SHA1, 6
// digits, 30 seconds: Digits 0 means 6 and Period 0 means 30s.
type Params struct {
	Algorithm Algorithm
	Digits    int           // 6 or 8
	Period    time.Duration // 30s or 60s
}

// WithDefaults returns p with zero fields replaced by their defaults.
func (p Params) WithDefaults() Params {
	if p.Digits == 0 {
		p.Digits = DefaultDigits
	}
	if p.Period == 0 {
		p.Period = DefaultPeriod
	}
	return p
}

// Validate reports whether p (after defaults) is supported: SHA1, SHA256 or
// SHA512; 6 or 8 digits; a period of 30s or 60s. It returns an error wrapping
// ErrInvalidParams.
func (p Params) Validate() error {
	_, err := p.resolve()
	return err
}

func (p Params) resolve() (Params, error) {
	p = p.WithDefaults()
	switch {
	case !p.Algorithm.valid():
		return p, fmt.Errorf("%w: unsupported algorithm", ErrInvalidParams)
	case p.Digits != 6 && p.Digits != 8:
		return p, fmt.Errorf("%w: digits must be 6 or 8", ErrInvalidParams)
	case p.Period != 30*time.Second && p.Period != 60*time.Second:
		return p, fmt.Errorf("%w: period must be 30s or 60s", ErrInvalidParams)
	}
	return p, nil
}

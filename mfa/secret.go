package mfa

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// SecretLen is the length of secrets made by NewSecret: 160 bits, the
// length RFC 4226 recommends.
const SecretLen = 20

const redacted = "[redacted]"

// Secret is an OTP seed. It converts to and from []byte freely, but its
// printed, JSON and slog forms are redacted so it cannot leak into a log.
type Secret []byte

// String returns a redacted placeholder.
func (Secret) String() string { return redacted }

// GoString returns a redacted placeholder.
func (Secret) GoString() string { return "mfa.Secret(" + redacted + ")" }

// Format writes a redacted placeholder for every verb.
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// MarshalJSON returns a redacted placeholder; use EncodeSecret to persist.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue returns a redacted placeholder.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// NewSecret returns a SecretLen-byte secret read from r; nil means
// crypto/rand. It returns the reader's error if it fails.
func NewSecret(r io.Reader) (Secret, error) {
	if r == nil {
		r = rand.Reader
	}
	s := make(Secret, SecretLen)
	if _, err := io.ReadFull(r, s); err != nil {
		return nil, fmt.Errorf("mfa: read random secret: %w", err)
	}
	return s, nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodeSecret returns secret in upper-case base32 without padding, the form
// authenticator apps expect.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// DecodeSecret decodes base32 text, upper or lower case, with or without
// trailing padding. It returns ErrInvalidSecret (never echoing the input) if
// the text is not base32 or decodes to more than MaxSecretLen bytes. It does
// not enforce MinSecretLen; callers decide.
func DecodeSecret(s string) (Secret, error) {
	s = strings.TrimRight(s, "=")
	if s == "" || len(s) > (MaxSecretLen*8+4)/5 {
		return nil, ErrInvalidSecret
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '2' && c <= '7':
		default:
			return nil, ErrInvalidSecret
		}
		b = append(b, c)
	}
	out := make(Secret, b32.DecodedLen(len(b)))
	n, err := b32.Decode(out, b)
	if err != nil || n == 0 {
		return nil, ErrInvalidSecret
	}
	return out[:n], nil
}

// Types of OTP in key URIs and imported tokens.
const (
	TypeTOTP = "totp"
	TypeHOTP = "hotp"
)

// KeyInfo is what an otpauth URI describes.
type KeyInfo struct {
	Type    string // TypeTOTP or TypeHOTP
	Issuer  string
	Account string
	Secret  Secret
	Params  Params // Period is DefaultPeriod for HOTP
	Counter uint64 // HOTP only
}

// escapeURI percent-encodes everything except RFC 3986 unreserved
// characters, so a space is %20 (not "+") and a colon is %3A.
func escapeURI(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// KeyURI returns the otpauth://totp URI of a device in the Google
// Authenticator key-URI format: label "Issuer:account" (each part
// percent-encoded, so a colon inside either cannot split the label), then
// secret, issuer, algorithm, digits and period. p is written after defaults
// and is not validated; call Params.Validate first.
func KeyURI(issuer, account string, secret []byte, p Params) string {
	p = p.WithDefaults()
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	if issuer != "" {
		b.WriteString(escapeURI(issuer))
		b.WriteByte(':')
	}
	b.WriteString(escapeURI(account))
	b.WriteString("?secret=")
	b.WriteString(EncodeSecret(secret))
	if issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(escapeURI(issuer))
	}
	b.WriteString("&algorithm=")
	b.WriteString(p.Algorithm.String())
	b.WriteString("&digits=")
	b.WriteString(strconv.Itoa(p.Digits))
	b.WriteString("&period=")
	b.WriteString(strconv.FormatInt(int64(p.Period.Seconds()), 10))
	return b.String()
}

const maxKeyURILen = 4096

func uriErr(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidKeyURI, reason) }

// ParseKeyURI parses an otpauth URI strictly: type totp or hotp; a non-empty
// account; a secret parameter that is valid base32 of at least MinSecretLen
// bytes; algorithm SHA1, SHA256 or SHA512; digits 6 or 8; period 30 or 60
// (totp); a counter (hotp). The issuer parameter, when the label also has an
// issuer prefix, must equal it. Known parameters may appear once; unknown
// ones are ignored. Every error wraps ErrInvalidKeyURI and never contains
// the URI or the secret.
func ParseKeyURI(s string) (KeyInfo, error) {
	var ki KeyInfo
	if len(s) > maxKeyURILen {
		return ki, uriErr("too long")
	}
	const scheme = "otpauth://"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return ki, uriErr("scheme must be otpauth")
	}
	rest := s[len(scheme):]
	typ, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return ki, uriErr("missing label")
	}
	switch strings.ToLower(typ) {
	case TypeTOTP:
		ki.Type = TypeTOTP
	case TypeHOTP:
		ki.Type = TypeHOTP
	default:
		return ki, uriErr("type must be totp or hotp")
	}
	rawLabel, rawQuery, _ := strings.Cut(rest, "?")
	if strings.ContainsRune(rawQuery, '#') {
		return ki, uriErr("fragment not allowed")
	}
	// The issuer prefix ends at the first literal colon; a label without one
	// may use an encoded colon (%3A) as the separator instead.
	rawIssuer, rawAccount, ok := strings.Cut(rawLabel, ":")
	if !ok {
		if i := indexEncodedColon(rawLabel); i >= 0 {
			rawIssuer, rawAccount, ok = rawLabel[:i], rawLabel[i+3:], true
		}
	}
	if !ok {
		rawIssuer, rawAccount = "", rawLabel
	} else if rawIssuer == "" {
		return ki, uriErr("empty issuer prefix")
	}
	issuer, err1 := url.PathUnescape(rawIssuer)
	account, err2 := url.PathUnescape(rawAccount)
	if err1 != nil || err2 != nil {
		return ki, uriErr("label is not valid percent-encoding")
	}
	if !printable(issuer) || !printable(account) {
		return ki, uriErr("label must be printable UTF-8")
	}
	ki.Issuer = issuer
	ki.Account = strings.TrimLeft(account, " ")
	if ki.Account == "" {
		return ki, uriErr("missing account name")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return ki, uriErr("query is not valid")
	}
	get := func(name string) (string, bool, error) {
		v, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", false, uriErr("parameter " + name + " repeated")
		}
		return v[0], true, nil
	}
	sec, ok, err := get("secret")
	if err != nil {
		return ki, err
	}
	if !ok || sec == "" {
		return ki, uriErr("missing secret")
	}
	ki.Secret, err = DecodeSecret(sec)
	if err != nil {
		return ki, uriErr("secret is not valid base32")
	}
	if len(ki.Secret) < MinSecretLen {
		return ki, uriErr("secret shorter than 128 bits")
	}
	if iss, ok, err := get("issuer"); err != nil {
		return ki, err
	} else if ok {
		if !printable(iss) {
			return ki, uriErr("issuer must be printable UTF-8")
		}
		if ki.Issuer != "" && ki.Issuer != iss {
			return ki, uriErr("issuer parameter differs from label")
		}
		ki.Issuer = iss
	}
	if a, ok, err := get("algorithm"); err != nil {
		return ki, err
	} else if ok {
		switch strings.ToUpper(a) {
		case "SHA1":
			ki.Params.Algorithm = SHA1
		case "SHA256":
			ki.Params.Algorithm = SHA256
		case "SHA512":
			ki.Params.Algorithm = SHA512
		default:
			return ki, uriErr("unsupported algorithm")
		}
	}
	if d, ok, err := get("digits"); err != nil {
		return ki, err
	} else if ok {
		switch d {
		case "6", "8":
			ki.Params.Digits = int(d[0] - '0')
		default:
			return ki, uriErr("digits must be 6 or 8")
		}
	}
	if ki.Type == TypeTOTP {
		if per, ok, err := get("period"); err != nil {
			return ki, err
		} else if ok {
			switch per {
			case "30":
				ki.Params.Period = DefaultPeriod
			case "60":
				ki.Params.Period = 2 * DefaultPeriod
			default:
				return ki, uriErr("period must be 30 or 60")
			}
		}
	} else {
		c, ok, err := get("counter")
		if err != nil {
			return ki, err
		}
		if !ok {
			return ki, uriErr("hotp needs a counter")
		}
		ki.Counter, err = strconv.ParseUint(c, 10, 64)
		if err != nil {
			return ki, uriErr("counter is not a number")
		}
	}
	ki.Params = ki.Params.WithDefaults()
	return ki, nil
}

// indexEncodedColon returns the index of the first "%3A" or "%3a" in s, or -1.
func indexEncodedColon(s string) int {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '3' && (s[i+2] == 'A' || s[i+2] == 'a') {
			return i
		}
	}
	return -1
}

// printable reports whether s is valid UTF-8 without control characters,
// so a label cannot inject lines into logs or spoof the authenticator UI.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// QR code size limits for QRPNG, in pixels.
const (
	DefaultQRSize = 256
	MinQRSize     = 64
	MaxQRSize     = 1024
)

// QRPNG renders uri as a square PNG QR code of size pixels (0 means
// DefaultQRSize) with error correction level M. It returns ErrInvalidParams
// for a size outside MinQRSize..MaxQRSize and ErrQRCode if the URI does not
// fit; the error never contains the URI.
func QRPNG(uri string, size int) ([]byte, error) {
	if size == 0 {
		size = DefaultQRSize
	}
	if size < MinQRSize || size > MaxQRSize {
		return nil, fmt.Errorf("%w: qr size out of range", ErrInvalidParams)
	}
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, ErrQRCode
	}
	code, err = barcode.Scale(code, size, size)
	if err != nil {
		return nil, ErrQRCode
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, code); err != nil {
		return nil, ErrQRCode
	}
	return buf.Bytes(), nil
}

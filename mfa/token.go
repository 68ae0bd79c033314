package mfa

import (
	"io"
	"strconv"
	"strings"
)

// DefaultImportMaxBytes is the size limit of an import file when the caller
// gives none: 10 MiB.
const DefaultImportMaxBytes = 10 << 20

// Token is a hardware token read from an import file.
type Token struct {
	Row    int // where the file holds it, numbered as RowError.Row
	Serial string
	Secret Secret
	Params
	Type    string // TypeTOTP, or TypeHOTP for a PSKC HOTP key
	Counter uint64 // HOTP only
}

// RowError is why one entry of an import file was rejected, or skipped.
// Row is the line number for CSV (the header is line 1) and the 1-based
// KeyPackage index for PSKC. Serial is the entry's serial when it is well
// formed, else empty. Reason is one of a fixed set of messages and never
// holds file content.
type RowError struct {
	Row    int    `json:"row"`
	Serial string `json:"serial"`
	Reason string `json:"reason"`
}

// Parsed is what an import file holds: the tokens to import, in file
// order, the entries rejected and the entries skipped because they are not
// token cards (a PSKC PIN key), each with its reason.
type Parsed struct {
	Tokens   []Token
	Rejected []RowError
	Skipped  []RowError
}

// utf8BOM is the byte-order mark a file may start with.
var utf8BOM = []byte("\xef\xbb\xbf")

// Error returns "mfa: row N (serial S): reason".
func (e RowError) Error() string {
	var b strings.Builder
	b.WriteString("mfa: row ")
	b.WriteString(strconv.Itoa(e.Row))
	if e.Serial != "" {
		b.WriteString(" (serial ")
		b.WriteString(e.Serial)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Row error reasons.
const (
	reasonBadSerial      = "serial must be 4-32 characters of A-Z a-z 0-9 -"
	reasonDupSerial      = "duplicate serial"
	reasonDupSecret      = "secret duplicates another row"
	reasonBadSecret      = "secret is not valid base32"
	reasonBadSecret64    = "secret is not valid base64"
	reasonShortSecret    = "secret shorter than 128 bits"
	reasonLongSecret     = "secret longer than 1024 bits"
	reasonBadAlgorithm   = "algorithm must be SHA1, SHA256 or SHA512"
	reasonBadDigits      = "digits must be 6 or 8"
	reasonBadPeriod      = "period must be 30 or 60"
	reasonFieldCount     = "want 5 fields"
	reasonMalformedCSV   = "malformed csv line"
	reasonKeyAlgorithm   = "key algorithm must be the pskc totp or hotp urn"
	reasonKeyCount       = "key package must hold exactly one key"
	reasonNoSecret       = "missing secret"
	reasonBadEncoding    = "response encoding must be DECIMAL"
	reasonBadCounter     = "counter is not a number"
	reasonEncMethod      = "unsupported encryption method"
	reasonDecrypt        = "cannot decrypt secret"
	reasonNoMAC          = "encrypted secret has no MAC"
	reasonBadMAC         = "MAC does not match"
	reasonNoEncKey       = "encrypted secret but no EncryptionKey"
	reasonEncryptedParam = "encrypted parameters are not supported"
	reasonPIN            = "PIN usage mode not supported"
	reasonPINKey         = "a PIN, not a token card: skipped"
)

func validSerial(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// importSet collects tokens, row errors and skipped rows, and rejects
// duplicates. Serials are compared case-insensitively, as a person reading a
// card would.
type importSet struct {
	tokens  []Token
	errs    []RowError
	skipped []RowError
	serials map[string]bool
	secrets map[string]bool
}

func (s *importSet) parsed() Parsed {
	return Parsed{Tokens: s.tokens, Rejected: s.errs, Skipped: s.skipped}
}

// skip records a row that is not a token; its serial is not checked for
// duplicates.
func (s *importSet) skip(row int, serial, reason string) {
	if !validSerial(serial) {
		serial = ""
	}
	s.skipped = append(s.skipped, RowError{Row: row, Serial: serial, Reason: reason})
}

func newImportSet() *importSet {
	return &importSet{serials: map[string]bool{}, secrets: map[string]bool{}}
}

func (s *importSet) reject(row int, serial, reason string) {
	if !validSerial(serial) {
		serial = ""
	}
	s.errs = append(s.errs, RowError{Row: row, Serial: serial, Reason: reason})
}

// add records tok unless its serial or secret repeats an earlier row.
func (s *importSet) add(row int, tok Token) {
	key := strings.ToUpper(tok.Serial)
	if s.serials[key] {
		s.reject(row, tok.Serial, reasonDupSerial)
		return
	}
	s.serials[key] = true
	if s.secrets[string(tok.Secret)] {
		s.reject(row, tok.Serial, reasonDupSecret)
		return
	}
	s.secrets[string(tok.Secret)] = true
	tok.Row = row
	s.tokens = append(s.tokens, tok)
}

// checkSecretLen returns the row reason for a secret of bad length, or "".
func checkSecretLen(b []byte) string {
	switch {
	case len(b) < MinSecretLen:
		return reasonShortSecret
	case len(b) > MaxSecretLen:
		return reasonLongSecret
	}
	return ""
}

// readCapped reads all of r, or returns ErrTooLarge past max bytes.
func readCapped(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultImportMaxBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}

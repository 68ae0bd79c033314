package mfa

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// CSVHeader is the required first line of a hardware token CSV file.
const CSVHeader = "serial,secret,algorithm,digits,period"

// ParseCSV reads a hardware token inventory in CSV: the header CSVHeader,
// then one token per line: serial (4-32 characters of A-Z a-z 0-9 -),
// secret in base32 (at least 128 bits), algorithm (SHA1, SHA256, SHA512),
// digits (6 or 8) and period in seconds (30 or 60). Every field is
// required; spaces around fields are ignored.
//
// It returns the valid tokens, with their line in Token.Row, and a RowError
// for every rejected line (including duplicates of a serial or a secret
// within the file); deciding to import nothing when any line is rejected is
// the caller's. A UTF-8 byte-order mark before the header is ignored. It
// returns ErrTooLarge when the input exceeds maxBytes (0 means
// DefaultImportMaxBytes), an error wrapping ErrInvalidCSV for a missing or
// different header, or the reader's error, each with an empty Parsed.
func ParseCSV(r io.Reader, maxBytes int64) (Parsed, error) {
	data, err := readCapped(r, maxBytes)
	if err != nil {
		return Parsed{}, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil || strings.Join(head, ",") != CSVHeader {
		return Parsed{}, fmt.Errorf("%w: header must be %q", ErrInvalidCSV, CSVHeader)
	}
	set := newImportSet()
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				set.reject(pe.StartLine, "", reasonMalformedCSV)
				continue
			}
			return Parsed{}, fmt.Errorf("%w: read", ErrInvalidCSV)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 5 {
			set.reject(line, "", reasonFieldCount)
			continue
		}
		tok, reason := csvToken(rec)
		if reason != "" {
			set.reject(line, tok.Serial, reason)
			continue
		}
		set.add(line, tok)
	}
	return set.parsed(), nil
}

func csvToken(rec []string) (Token, string) {
	tok := Token{Type: TypeTOTP, Serial: strings.TrimSpace(rec[0])}
	if !validSerial(tok.Serial) {
		return tok, reasonBadSerial
	}
	sec, err := DecodeSecret(strings.TrimSpace(rec[1]))
	if err != nil {
		if errors.Is(err, ErrInvalidSecret) && len(strings.TrimSpace(rec[1])) > 0 && validBase32Chars(strings.TrimSpace(rec[1])) {
			return tok, reasonLongSecret
		}
		return tok, reasonBadSecret
	}
	if r := checkSecretLen(sec); r != "" {
		return tok, r
	}
	tok.Secret = sec
	switch strings.ToUpper(strings.TrimSpace(rec[2])) {
	case "SHA1":
		tok.Algorithm = SHA1
	case "SHA256":
		tok.Algorithm = SHA256
	case "SHA512":
		tok.Algorithm = SHA512
	default:
		return tok, reasonBadAlgorithm
	}
	switch strings.TrimSpace(rec[3]) {
	case "6":
		tok.Digits = 6
	case "8":
		tok.Digits = 8
	default:
		return tok, reasonBadDigits
	}
	switch strings.TrimSpace(rec[4]) {
	case "30":
		tok.Period = 30 * time.Second
	case "60":
		tok.Period = 60 * time.Second
	default:
		return tok, reasonBadPeriod
	}
	return tok, ""
}

// validBase32Chars reports whether s has only base32 characters, to tell a
// too-long secret from a malformed one.
func validBase32Chars(s string) bool {
	s = strings.TrimRight(s, "=")
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || s[i] >= '2' && s[i] <= '7') {
			return false
		}
	}
	return len(s) > (MaxSecretLen*8+4)/5
}

// Package validate checks the identity fields of the account directory and
// of unbind appeals: mainland mobile numbers, e-mail addresses, resident ID
// numbers (GB 11643-1999) and unified social credit codes (GB 32100-2015).
package validate

import (
	"errors"
	"net/mail"
	"strings"
	"time"
)

// Errors returned by the validators. Messages never echo the input.
var (
	ErrPhone    = errors.New("validate: not a mainland mobile number (11 digits starting with 1[3-9])")
	ErrEmail    = errors.New("validate: not an e-mail address")
	ErrIDNumber = errors.New("validate: not a valid resident ID number (GB 11643 checksum)")
	ErrUSCC     = errors.New("validate: not a valid unified social credit code (GB 32100 checksum)")
	ErrLoginID  = errors.New("validate: login id does not fit its kind")
	ErrName     = errors.New("validate: name must be 1-64 printable characters")
)

// Phone checks a mainland China mobile number: 11 digits, 1 then 3-9. A
// leading +86 is accepted and removed; the normalised number is returned.
func Phone(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "+86")
	if len(s) != 11 || s[0] != '1' || s[1] < '3' || s[1] > '9' {
		return "", ErrPhone
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", ErrPhone
		}
	}
	return s, nil
}

// Email checks a bare e-mail address (no display name), at most 254 bytes.
func Email(s string) (string, error) {
	if len(s) == 0 || len(s) > 254 {
		return "", ErrEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", ErrEmail
	}
	return s, nil
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const idCheck = "10X98765432"

// IDNumber checks an 18-character resident identity number: 17 digits, a
// valid birth date, and the ISO 7064 MOD 11-2 check character (0-9 or X). A
// lowercase x is accepted and returned uppercase.
func IDNumber(s string) (string, error) {
	if len(s) != 18 {
		return "", ErrIDNumber
	}
	s = strings.ToUpper(s)
	sum := 0
	for i := 0; i < 17; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return "", ErrIDNumber
		}
		sum += int(c-'0') * idWeights[i]
	}
	if s[17] != idCheck[sum%11] {
		return "", ErrIDNumber
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1900 || birth.After(time.Now()) {
		return "", ErrIDNumber
	}
	return s, nil
}

// usccChars is the GB 32100 alphabet: digits and uppercase letters without I, O, S, V, Z.
const usccChars = "0123456789ABCDEFGHJKLMNPQRTUWXY"

var usccWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// USCC checks an 18-character unified social credit code with its GB 32100
// check character (weighted sum modulo 31). Lowercase input is accepted and
// returned uppercase.
func USCC(s string) (string, error) {
	if len(s) != 18 {
		return "", ErrUSCC
	}
	s = strings.ToUpper(s)
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(usccChars, s[i])
		if v < 0 {
			return "", ErrUSCC
		}
		sum += v * usccWeights[i]
	}
	want := (31 - sum%31) % 31
	if strings.IndexByte(usccChars, s[17]) != want {
		return "", ErrUSCC
	}
	return s, nil
}

// LoginID checks a login id against its kind: qq (5-11 digits, no leading 0),
// email, wechat (6-20 letters, digits, _ or -, starting with a letter) and
// wechat_official (the same rule, or a gh_ original id). It returns ErrLoginID
// for an unknown kind too.
func LoginID(kind, id string) error {
	switch kind {
	case "qq":
		if len(id) < 5 || len(id) > 11 || id[0] == '0' || !allDigits(id) {
			return ErrLoginID
		}
	case "email":
		if _, err := Email(id); err != nil {
			return ErrLoginID
		}
	case "wechat", "wechat_official":
		if !wechatID(id) {
			return ErrLoginID
		}
	default:
		return ErrLoginID
	}
	return nil
}

// Name checks a person's or company's name: 1-64 runes, no control characters.
func Name(s string) (string, error) {
	s = strings.TrimSpace(s)
	n := 0
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return "", ErrName
		}
		n++
	}
	if n == 0 || n > 64 {
		return "", ErrName
	}
	return s, nil
}

func wechatID(id string) bool {
	if len(id) < 6 || len(id) > 20 {
		return false
	}
	c0 := id[0]
	if !(c0 >= 'a' && c0 <= 'z' || c0 >= 'A' && c0 <= 'Z') {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

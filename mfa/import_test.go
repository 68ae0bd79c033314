package mfa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePSKCRFC6030(t *testing.T) {
	psk, _ := hex.DecodeString("12345678901234567890123456789012")
	tests := []struct {
		file string
		opts PSKCOptions
	}{
		{"rfc6030-figure2.xml", PSKCOptions{}},
		{"rfc6030-figure5.xml", PSKCOptions{PreSharedKey: psk}},
		{"rfc6030-figure7.xml", PSKCOptions{Password: "qwerty"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			parsed, err := ParsePSKC(bytes.NewReader(mustRead(t, tt.file)), tt.opts)
			toks, rowErrs := parsed.Tokens, parsed.Rejected
			if err != nil || len(rowErrs) != 0 {
				t.Fatalf("ParsePSKC: %v %v", err, rowErrs)
			}
			if len(toks) != 1 {
				t.Fatalf("%d tokens", len(toks))
			}
			tok := toks[0]
			if tok.Serial != "987654321" || !bytes.Equal(tok.Secret, []byte("12345678901234567890")) ||
				tok.Digits != 8 || tok.Algorithm != SHA1 || tok.Period != 30*time.Second || tok.Type != TypeHOTP || tok.Counter != 0 {
				t.Fatalf("token = %+v (secret %x)", tok, []byte(tok.Secret))
			}
			// The RFC 4226 vector with 8 digits.
			if got := HOTP(tok.Secret, 0, tok.Params); got != "84755224" {
				t.Fatalf("HOTP = %s", got)
			}
		})
	}
}

func TestParsePSKCKeyErrors(t *testing.T) {
	psk, _ := hex.DecodeString("12345678901234567890123456789012")
	wrong, _ := hex.DecodeString("00000000000000000000000000000000")
	fig5, fig7 := mustRead(t, "rfc6030-figure5.xml"), mustRead(t, "rfc6030-figure7.xml")
	tests := []struct {
		name string
		doc  []byte
		opts PSKCOptions
		err  error
		row  string
	}{
		{"no psk", fig5, PSKCOptions{}, ErrPSKCKey, ""},
		{"short psk", fig5, PSKCOptions{PreSharedKey: psk[:8]}, ErrPSKCKey, ""},
		{"wrong psk", fig5, PSKCOptions{PreSharedKey: wrong}, ErrPSKCKey, reasonBadMAC},
		{"no password", fig7, PSKCOptions{}, ErrPSKCKey, ""},
		{"wrong password", fig7, PSKCOptions{Password: "qwertz"}, ErrPSKCKey, reasonBadMAC},
		{"tampered MAC", bytes.Replace(fig5, []byte("Su+NvtQf"), []byte("Su+NvtQg"), 1), PSKCOptions{PreSharedKey: psk}, nil, reasonBadMAC},
		{"tampered ciphertext", bytes.Replace(fig5, []byte("AAECAwQFBgcICQoLDA0OD+cI"), []byte("AAECAwQFBgcICQoLDA0OD+cJ"), 1), PSKCOptions{PreSharedKey: psk}, nil, reasonBadMAC},
		{"MAC removed", bytes.Replace(fig5, []byte("<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n                    </ValueMAC>"), nil, 1), PSKCOptions{PreSharedKey: psk}, nil, reasonNoMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parsed, err := ParsePSKC(bytes.NewReader(tt.doc), tt.opts)
			toks, rowErrs := parsed.Tokens, parsed.Rejected
			if len(toks) != 0 {
				t.Fatalf("got tokens %v", toks)
			}
			// A wrong key usually fails at the MAC key's padding (document
			// error); rarely the padding is valid and every row fails its MAC.
			if tt.err != nil && errors.Is(err, tt.err) {
				return
			}
			if tt.row != "" && err == nil && len(rowErrs) == 1 && rowErrs[0].Reason == tt.row {
				return
			}
			t.Fatalf("err = %v, rows = %v", err, rowErrs)
		})
	}
}

// buildPSKC writes a PBKDF2-encrypted PSKC document the way a vendor would.
func buildPSKC(t testing.TB, password string, entries []string) []byte {
	t.Helper()
	salt := []byte("saltsalt")
	key, err := pbkdf2.Key(sha256.New, password, salt, 2000, 16)
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{7}, 16)
	enc := func(pt []byte) []byte {
		pad := 16 - len(pt)%16
		pt = append(bytes.Clone(pt), bytes.Repeat([]byte{byte(pad)}, pad)...)
		blk, _ := aes.NewCipher(key)
		out := make([]byte, len(pt))
		cipher.NewCBCEncrypter(blk, iv).CryptBlocks(out, pt)
		return append(bytes.Clone(iv), out...)
	}
	macKey := bytes.Repeat([]byte{9}, 32)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" xmlns:pkcs5="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#">
<EncryptionKey><xenc11:DerivedKey><xenc11:KeyDerivationMethod Algorithm="http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2">
<pkcs5:PBKDF2-params><Salt><Specified>%s</Specified></Salt><IterationCount>2000</IterationCount><KeyLength>16</KeyLength>
<PRF Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"/></pkcs5:PBKDF2-params></xenc11:KeyDerivationMethod></xenc11:DerivedKey></EncryptionKey>
<MACMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"><MACKey>
<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></MACKey></MACMethod>
`, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(enc(macKey)))
	for _, e := range entries {
		// serial|algorithmURN|suite|digits|interval|secret
		f := strings.Split(e, "|")
		ct := enc([]byte(f[5]))
		m := hmac.New(sha256.New, macKey)
		m.Write(ct)
		fmt.Fprintf(&b, `<KeyPackage><DeviceInfo><SerialNo>%s</SerialNo></DeviceInfo>
<Key Id="%s" Algorithm="%s"><AlgorithmParameters><Suite>%s</Suite><ResponseFormat Length="%s" Encoding="DECIMAL"/></AlgorithmParameters>
<Data><Secret><EncryptedValue><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></EncryptedValue><ValueMAC>%s</ValueMAC></Secret>
<TimeInterval><PlainValue>%s</PlainValue></TimeInterval></Data></Key></KeyPackage>
`, f[0], f[0], f[1], f[2], f[3], base64.StdEncoding.EncodeToString(ct), base64.StdEncoding.EncodeToString(m.Sum(nil)), f[4])
	}
	b.WriteString("</KeyContainer>\n")
	return []byte(b.String())
}

func TestParsePSKCRows(t *testing.T) {
	const totp = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
	doc := buildPSKC(t, "s3cret", []string{
		"TOK-0001|" + totp + "|HMAC-SHA256|6|60|0123456789abcdef0123",
		"TOK-0002|" + totp + "|HMAC-SHA1|8|30|abcdef0123456789abcd",
		"TOK-0001|" + totp + "|HMAC-SHA1|6|30|fedcba9876543210fedc",
		"TOK-0004|urn:ietf:params:xml:ns:keyprov:pskc#ocra|HMAC-SHA1|6|30|1111111111222222222233",
		"TOK-0005|" + totp + "|HMAC-MD5|6|30|1111111111222222222244",
		"TOK-0006|" + totp + "|HMAC-SHA1|7|30|1111111111222222222255",
		"TOK-0007|" + totp + "|HMAC-SHA1|6|45|1111111111222222222266",
		"TOK-0008|" + totp + "|HMAC-SHA1|6|30|tiny",
		"bad serial!|" + totp + "|HMAC-SHA1|6|30|1111111111222222222277",
		"TOK-0010|" + totp + "|HMAC-SHA1|6|30|abcdef0123456789abcd",
	})
	parsed, err := ParsePSKC(bytes.NewReader(doc), PSKCOptions{Password: "s3cret"})
	toks, rowErrs := parsed.Tokens, parsed.Rejected
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 {
		t.Fatalf("tokens %v", toks)
	}
	if toks[0].Serial != "TOK-0001" || toks[0].Algorithm != SHA256 || toks[0].Period != time.Minute || toks[0].Digits != 6 || string(toks[0].Secret) != "0123456789abcdef0123" || toks[0].Type != TypeTOTP {
		t.Fatalf("token 0 = %+v", toks[0])
	}
	if toks[1].Digits != 8 || toks[1].Period != 30*time.Second {
		t.Fatalf("token 1 = %+v", toks[1])
	}
	want := []RowError{
		{3, "TOK-0001", reasonDupSerial},
		{4, "TOK-0004", reasonKeyAlgorithm},
		{5, "TOK-0005", reasonBadAlgorithm},
		{6, "TOK-0006", reasonBadDigits},
		{7, "TOK-0007", reasonBadPeriod},
		{8, "TOK-0008", reasonShortSecret},
		{9, "", reasonBadSerial},
		{10, "TOK-0010", reasonDupSecret},
	}
	if fmt.Sprint(rowErrs) != fmt.Sprint(want) {
		t.Fatalf("row errors\n got %v\nwant %v", rowErrs, want)
	}
	for _, re := range rowErrs {
		for _, s := range []string{"0123456789abcdef", "1111111111", "tiny"} {
			if strings.Contains(re.Error(), s) {
				t.Fatalf("row error leaks secret: %v", re)
			}
		}
	}
}

func TestParsePSKCHostile(t *testing.T) {
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	tests := []struct {
		name string
		r    func() io.Reader
		err  error
	}{
		{"billion laughs", func() io.Reader { return bytes.NewReader(mustRead(t, "billion-laughs.xml")) }, ErrHostileXML},
		{"external entity", func() io.Reader { return bytes.NewReader(mustRead(t, "xxe.xml")) }, ErrHostileXML},
		{"doctype only", func() io.Reader {
			return strings.NewReader(`<?xml version="1.0"?><!DOCTYPE KeyContainer SYSTEM "http://example.com/x.dtd"><KeyContainer/>`)
		}, ErrHostileXML},
		{"deep nesting", func() io.Reader {
			return strings.NewReader(`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">` + deep + `</KeyContainer>`)
		}, ErrHostileXML},
		{"50 MB", func() io.Reader {
			return io.LimitReader(io.MultiReader(strings.NewReader("<KeyContainer>"), endless{}), 50<<20)
		}, ErrTooLarge},
		{"undeclared entity", func() io.Reader {
			return strings.NewReader(`<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">&xxe;</KeyContainer>`)
		}, ErrInvalidPSKC},
		{"not pskc", func() io.Reader { return strings.NewReader(`<KeyContainer Version="1.0"/>`) }, ErrInvalidPSKC},
		{"two roots", func() io.Reader { return strings.NewReader(`<a/><b/>`) }, ErrInvalidPSKC},
		{"empty", func() io.Reader { return strings.NewReader(``) }, ErrInvalidPSKC},
		{"truncated", func() io.Reader { return bytes.NewReader(mustRead(t, "rfc6030-figure2.xml")[:300]) }, ErrInvalidPSKC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			parsed, err := ParsePSKC(tt.r(), PSKCOptions{})
			toks, rows := parsed.Tokens, parsed.Rejected
			if !errors.Is(err, tt.err) || toks != nil || rows != nil {
				t.Fatalf("ParsePSKC = %v, %v, %v; want %v", toks, rows, err, tt.err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// endless is a reader that never ends and never allocates.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func TestParseCSV(t *testing.T) {
	parsed, err := ParseCSV(bytes.NewReader(mustRead(t, "tokens.csv")), 0)
	toks, rowErrs := parsed.Tokens, parsed.Rejected
	if err != nil || len(rowErrs) != 0 {
		t.Fatalf("ParseCSV: %v %v", err, rowErrs)
	}
	want := []struct {
		serial string
		n      int
		p      Params
	}{
		{"CARD-0001", 20, Params{SHA1, 6, 30 * time.Second}},
		{"CARD-0002", 32, Params{SHA256, 8, time.Minute}},
		{"CARD-0003", 64, Params{SHA512, 6, 30 * time.Second}},
	}
	if len(toks) != len(want) {
		t.Fatalf("%d tokens", len(toks))
	}
	for i, w := range want {
		if toks[i].Serial != w.serial || len(toks[i].Secret) != w.n || toks[i].Params != w.p || toks[i].Type != TypeTOTP {
			t.Errorf("token %d = %+v", i, toks[i])
		}
	}
	// The RFC 6238 vectors through imported tokens.
	if got := TOTP(toks[1].Secret, time.Unix(59, 0), Params{Algorithm: SHA256, Digits: 8}); got != "46119246" {
		t.Fatalf("SHA256 vector %s", got)
	}
}

func TestParseCSVRowErrors(t *testing.T) {
	parsed, err := ParseCSV(bytes.NewReader(mustRead(t, "tokens-bad.csv")), 0)
	toks, rowErrs := parsed.Tokens, parsed.Rejected
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 || toks[0].Serial != "CARD-0001" || toks[1].Serial != "CARD-0011" {
		t.Fatalf("tokens %v", toks)
	}
	want := []RowError{
		{3, "CARD-0001", reasonDupSerial},
		{4, "", reasonBadSerial},
		{5, "CARD-0004", reasonShortSecret},
		{6, "CARD-0005", reasonBadSecret},
		{7, "CARD-0006", reasonBadAlgorithm},
		{8, "CARD-0007", reasonBadDigits},
		{9, "CARD-0008", reasonBadPeriod},
		{10, "", reasonFieldCount},
		{11, "CARD-0010", reasonDupSecret},
	}
	if fmt.Sprint(rowErrs) != fmt.Sprint(want) {
		t.Fatalf("row errors\n got %v\nwant %v", rowErrs, want)
	}
}

func TestParseCSVWhole(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int64
		err  error
	}{
		{"no header", "CARD-0001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,SHA1,6,30\n", 0, ErrInvalidCSV},
		{"other header", "serial,seed,algorithm,digits,period\n", 0, ErrInvalidCSV},
		{"empty", "", 0, ErrInvalidCSV},
		{"too large", CSVHeader + "\n" + strings.Repeat("CARD-0001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,SHA1,6,30\n", 100), 1000, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parsed, err := ParseCSV(strings.NewReader(tt.in), tt.max)
			toks, rows := parsed.Tokens, parsed.Rejected
			if !errors.Is(err, tt.err) || toks != nil || rows != nil {
				t.Fatalf("ParseCSV = %v, %v, %v", toks, rows, err)
			}
		})
	}
	// BOM and CRLF are fine; a broken quote is a row error.
	in := "\xef\xbb\xbf" + CSVHeader + "\r\nCARD-0001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,SHA1,6,30\r\nCARD-\"0002,x,SHA1,6,30\r\n"
	parsed, err := ParseCSV(strings.NewReader(in), 0)
	toks, rows := parsed.Tokens, parsed.Rejected
	if err != nil || len(toks) != 1 || len(rows) != 1 || rows[0].Reason != reasonMalformedCSV {
		t.Fatalf("ParseCSV = %v, %v, %v", toks, rows, err)
	}
}

package mfa

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var bom = []byte("\xef\xbb\xbf")

// TestParsePSKCFiles reads files shaped as they arrive from vendors: with a
// byte-order mark, and with local-PIN KeyPackages beside the cards.
func TestParsePSKCFiles(t *testing.T) {
	psk, _ := hex.DecodeString("12345678901234567890123456789012")
	withBOM := func(name string) []byte { return append(bytes.Clone(bom), mustRead(t, name)...) }
	pinOnly := `<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage>
		<DeviceInfo><SerialNo>PIN-ONLY-1</SerialNo></DeviceInfo>
		<Key Id="p" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:pin"><Data><Secret><PlainValue>MTIzNA==</PlainValue></Secret></Data></Key>
	</KeyPackage></KeyContainer>`
	pinBesideCard := strings.Replace(string(mustRead(t, "rfc6030-pin.xml")),
		`</Key>
    </KeyPackage>
    <KeyPackage>`, `</Key>
        <Key Id="123456781" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:pin"><Data><Secret><PlainValue>MTIzNA==</PlainValue></Secret></Data></Key>
    </KeyPackage>
    <KeyPackage>`, 1)
	tests := []struct {
		name     string
		doc      []byte
		opts     PSKCOptions
		serials  []string // tokens, in order
		rows     []int    // the tokens' rows
		rejected []RowError
		skipped  []RowError
		err      error
	}{
		{name: "byte-order mark, plain", doc: withBOM("rfc6030-figure2.xml"), serials: []string{"987654321"}, rows: []int{1}},
		{name: "byte-order mark, pre-shared key", doc: withBOM("rfc6030-figure5.xml"), opts: PSKCOptions{PreSharedKey: psk},
			serials: []string{"987654321"}, rows: []int{1}},
		{name: "byte-order mark, PBKDF2", doc: withBOM("rfc6030-figure7.xml"), opts: PSKCOptions{Password: "qwerty"},
			serials: []string{"987654321"}, rows: []int{1}},
		{name: "RFC 6030 local PIN", doc: mustRead(t, "rfc6030-pin.xml"), serials: []string{"987654321"}, rows: []int{1},
			skipped: []RowError{{2, "987654321", reasonPINKey}}},
		{name: "vendor file: byte-order mark and a PIN per card", doc: mustRead(t, "vendor-totp-pin-bom.xml"),
			serials: []string{"TV-10000001", "TV-10000002"}, rows: []int{1, 3},
			skipped: []RowError{{2, "TV-10000001", reasonPINKey}, {4, "TV-10000002", reasonPINKey}}},
		{name: "only a PIN", doc: []byte(pinOnly), skipped: []RowError{{1, "PIN-ONLY-1", reasonPINKey}}},
		{name: "a PIN key inside the card's package", doc: []byte(pinBesideCard),
			rejected: []RowError{{1, "987654321", reasonKeyCount}}, skipped: []RowError{{2, "987654321", reasonPINKey}}},
		{name: "two byte-order marks", doc: append(bytes.Clone(bom), withBOM("rfc6030-figure2.xml")...), err: ErrInvalidPSKC},
		{name: "UTF-16 byte-order mark", doc: append([]byte{0xfe, 0xff}, mustRead(t, "rfc6030-figure2.xml")...), err: ErrInvalidPSKC},
		{name: "byte-order mark after the declaration", doc: bytes.Replace(mustRead(t, "rfc6030-figure2.xml"), []byte("?>"), append([]byte("?>"), bom...), 1),
			err: ErrInvalidPSKC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePSKC(bytes.NewReader(tt.doc), tt.opts)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || got.Tokens != nil || got.Rejected != nil || got.Skipped != nil {
					t.Fatalf("ParsePSKC = %+v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var serials []string
			var rows []int
			for _, tok := range got.Tokens {
				serials = append(serials, tok.Serial)
				rows = append(rows, tok.Row)
			}
			if fmt.Sprint(serials) != fmt.Sprint(tt.serials) || fmt.Sprint(rows) != fmt.Sprint(tt.rows) {
				t.Errorf("tokens %v at rows %v; want %v at %v", serials, rows, tt.serials, tt.rows)
			}
			if fmt.Sprint(got.Rejected) != fmt.Sprint(tt.rejected) {
				t.Errorf("rejected %v; want %v", got.Rejected, tt.rejected)
			}
			if fmt.Sprint(got.Skipped) != fmt.Sprint(tt.skipped) {
				t.Errorf("skipped %v; want %v", got.Skipped, tt.skipped)
			}
		})
	}
}

// TestParsePSKCVendorCards: the cards of the vendor-shaped file show the
// RFC 6238 codes for their secrets, and a skipped PIN never becomes one.
func TestParsePSKCVendorCards(t *testing.T) {
	got, err := ParsePSKC(bytes.NewReader(mustRead(t, "vendor-totp-pin-bom.xml")), PSKCOptions{})
	if err != nil || len(got.Tokens) != 2 {
		t.Fatalf("ParsePSKC = %+v, %v", got, err)
	}
	tok := got.Tokens[0]
	if tok.Type != TypeTOTP || tok.Params != (Params{SHA1, 6, 30 * time.Second}) || string(tok.Secret) != "12345678901234567890" {
		t.Fatalf("card = %+v", tok)
	}
	// RFC 6238's SHA1 vector at T = 59 s, cut to 6 digits.
	if c := TOTP(tok.Secret, time.Unix(59, 0), tok.Params); c != "287082" {
		t.Fatalf("TOTP = %s", c)
	}
	for _, tok := range got.Tokens {
		if len(tok.Secret) == 4 {
			t.Fatalf("a PIN became a token: %+v", tok)
		}
	}
}

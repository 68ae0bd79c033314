package mfa

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestNewSecret(t *testing.T) {
	a, err := NewSecret(nil)
	if err != nil || len(a) != SecretLen {
		t.Fatalf("NewSecret = %d bytes, %v", len(a), err)
	}
	b, _ := NewSecret(nil)
	if bytes.Equal(a, b) {
		t.Fatal("two secrets are equal")
	}
	if _, err := NewSecret(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("reader error ignored")
	}
	dec, err := DecodeSecret(EncodeSecret(a))
	if err != nil || !bytes.Equal(dec, a) {
		t.Fatalf("round trip: %v", err)
	}
	if strings.Contains(EncodeSecret(a), "=") {
		t.Fatal("padding in encoded secret")
	}
}

func TestDecodeSecret(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", true},
		{"gezdgnbvgy3tqojqgezdgnbvgy3tqojq", true},
		{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA====", true},
		{"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA", true},
		{"", false},
		{"GEZD GNBV", false},
		{"GEZDGNB1", false},
		{"A", false},
		{strings.Repeat("A", 300), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := DecodeSecret(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil && (!errors.Is(err, ErrInvalidSecret) || (tt.in != "" && strings.Contains(err.Error(), tt.in))) {
				t.Fatalf("bad error %v", err)
			}
		})
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret(rfcSeed20)
	type holder struct {
		Name   string
		Secret Secret
	}
	h := holder{"x", s}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("m", "secret", s, "holder", h)
	js, _ := json.Marshal(h)
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", h, h, h), string(js), logged.String(),
		fmt.Sprint(KeyInfo{Secret: s}), fmt.Sprint(Token{Secret: s}), fmt.Sprint(Candidate{Secret: s}),
		fmt.Sprint(PSKCOptions{PreSharedKey: rfcSeed20, Password: "qwerty"}),
	}
	for _, o := range outs {
		for _, leak := range []string{string(rfcSeed20), hex.EncodeToString(rfcSeed20), EncodeSecret(rfcSeed20), "qwerty", "[49 50 51", "3132333435"} {
			if strings.Contains(o, leak) {
				t.Errorf("output %q leaks the secret", o)
			}
		}
	}
}

func TestKeyURI(t *testing.T) {
	secret := rfcSeed20
	tests := []struct {
		issuer, account string
		p               Params
		want            string
	}{
		{"Example Cloud", "alice@example.com", Params{},
			"otpauth://totp/Example%20Cloud:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Cloud&algorithm=SHA1&digits=6&period=30"},
		{"A:B&C", "x:y?z/w", Params{Algorithm: SHA256, Digits: 8, Period: time.Minute},
			"otpauth://totp/A%3AB%26C:x%3Ay%3Fz%2Fw?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A%3AB%26C&algorithm=SHA256&digits=8&period=60"},
		{"", "bob", Params{},
			"otpauth://totp/bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30"},
		{"腾讯云", "李雷", Params{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.issuer+"/"+tt.account, func(t *testing.T) {
			uri := KeyURI(tt.issuer, tt.account, secret, tt.p)
			if tt.want != "" && uri != tt.want {
				t.Fatalf("KeyURI =\n %s\nwant\n %s", uri, tt.want)
			}
			ki, err := ParseKeyURI(uri)
			if err != nil {
				t.Fatal(err)
			}
			want := KeyInfo{Type: TypeTOTP, Issuer: tt.issuer, Account: tt.account, Secret: secret, Params: tt.p.WithDefaults()}
			if ki.Issuer != want.Issuer || ki.Account != want.Account || !bytes.Equal(ki.Secret, secret) || ki.Params != want.Params || ki.Type != TypeTOTP {
				t.Fatalf("ParseKeyURI = %+v, want %+v", ki, want)
			}
		})
	}
}

func TestParseKeyURIStrict(t *testing.T) {
	const sec = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	tests := []struct {
		name, uri string
		ok        bool
	}{
		{"minimal", "otpauth://totp/alice?secret=" + sec, true},
		{"google example", "otpauth://totp/Example:alice@google.com?secret=" + sec + "&issuer=Example", true},
		{"colon escaped", "otpauth://totp/ACME%20Co%3Ajohn.doe@email.com?secret=" + sec + "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30", true},
		{"hotp", "otpauth://hotp/alice?secret=" + sec + "&counter=7", true},
		{"hotp without counter", "otpauth://hotp/alice?secret=" + sec, false},
		{"wrong scheme", "https://totp/alice?secret=" + sec, false},
		{"wrong type", "otpauth://motp/alice?secret=" + sec, false},
		{"no secret", "otpauth://totp/alice?issuer=x", false},
		{"empty secret", "otpauth://totp/alice?secret=", false},
		{"bad base32", "otpauth://totp/alice?secret=GEZD1111", false},
		{"short secret", "otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP", false},
		{"digits 7", "otpauth://totp/alice?secret=" + sec + "&digits=7", false},
		{"period 45", "otpauth://totp/alice?secret=" + sec + "&period=45", false},
		{"md5", "otpauth://totp/alice?secret=" + sec + "&algorithm=MD5", false},
		{"issuer mismatch", "otpauth://totp/A:alice?secret=" + sec + "&issuer=B", false},
		{"repeated secret", "otpauth://totp/alice?secret=" + sec + "&secret=" + sec, false},
		{"no account", "otpauth://totp/Issuer:?secret=" + sec, false},
		{"no label", "otpauth://totp?secret=" + sec, false},
		{"bad escape", "otpauth://totp/al%zzice?secret=" + sec, false},
		{"fragment", "otpauth://totp/alice?secret=" + sec + "#x", false},
		{"invalid utf-8 before encoded colon", "otpAuth://totp/\x91%3A", false},
		{"lower-case encoded colon", "otpauth://totp/Issuer%3aalice?secret=" + sec, true},
		{"invalid utf-8", "otpauth://totp/al%AAice?secret=" + sec, false},
		{"control character", "otpauth://totp/al%0Aice?secret=" + sec, false},
		{"control in issuer", "otpauth://totp/alice?secret=" + sec + "&issuer=a%0Db", false},
		{"too long", "otpauth://totp/" + strings.Repeat("a", 5000) + "?secret=" + sec, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ki, err := ParseKeyURI(tt.uri)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidKeyURI) {
					t.Fatalf("not ErrInvalidKeyURI: %v", err)
				}
				if strings.Contains(err.Error(), sec) || strings.Contains(err.Error(), "GEZD") {
					t.Fatalf("error leaks the secret: %v", err)
				}
			}
			if tt.name == "hotp" && (ki.Type != TypeHOTP || ki.Counter != 7) {
				t.Fatalf("hotp: %+v", ki)
			}
		})
	}
}

func TestQRPNG(t *testing.T) {
	uri := KeyURI("Example", "alice", rfcSeed20, Params{})
	b, err := QRPNG(uri, 0)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != DefaultQRSize || r.Dy() != DefaultQRSize {
		t.Fatalf("size %v", r)
	}
	if _, err := QRPNG(uri, 10); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("tiny: %v", err)
	}
	if _, err := QRPNG(strings.Repeat("x", 5000), 256); !errors.Is(err, ErrQRCode) {
		t.Fatalf("too long: %v", err)
	}
}

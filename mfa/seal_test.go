package mfa

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func b64key(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func TestParseKeyring(t *testing.T) {
	k1, k2 := b64key(1), b64key(2)
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"one", "k1:" + k1, true},
		{"two", "new:" + k2 + ", old:" + k1, true},
		{"raw url base64", "k1:" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), true},
		{"empty", "", false},
		{"no id", k1, false},
		{"bad id", "k 1:" + k1, false},
		{"long id", strings.Repeat("a", 33) + ":" + k1, false},
		{"dup id", "k1:" + k1 + ",k1:" + k2, false},
		{"short key", "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), false},
		{"bad base64", "k1:" + k1[:10] + "!!" + k1[12:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring, err := ParseKeyring(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidKeyring) {
					t.Fatalf("not ErrInvalidKeyring: %v", err)
				}
				for _, leak := range []string{k1, k2, k1[:12], "AQEBAQEB", "AgICAgIC"} {
					if strings.Contains(err.Error(), leak) {
						t.Fatalf("error echoes key material: %v", err)
					}
				}
				return
			}
			if ring.Encode() == "" {
				t.Fatal("empty encode")
			}
		})
	}
}

func TestKeyringRedacted(t *testing.T) {
	ring, err := GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	enc := ring.Encode()
	_, key, _ := strings.Cut(enc, ":")
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("m", "ring", ring)
	js, _ := json.Marshal(struct{ R *Keyring }{ring})
	for _, o := range []string{fmt.Sprint(ring), fmt.Sprintf("%+v %#v %s %x %q", ring, ring, ring, ring, ring), ring.String(), logged.String(), string(js)} {
		if strings.Contains(o, key) || strings.Contains(o, key[:16]) {
			t.Fatalf("keyring printed its key: %s", o)
		}
		if !strings.Contains(o, ring.CurrentID()) {
			t.Fatalf("keyring output lacks its id: %s", o)
		}
	}
	again, err := ParseKeyring(enc)
	if err != nil || again.CurrentID() != ring.CurrentID() {
		t.Fatalf("Encode does not round-trip: %v", err)
	}
}

func TestSealRoundTrip(t *testing.T) {
	ring, _ := ParseKeyring("k1:" + b64key(1))
	aad := AAD("mfa_devices", "dev-1")
	s, err := ring.Seal(rfcSeed20, aad)
	if err != nil || s.KeyID != "k1" {
		t.Fatalf("Seal = %v, %v", s, err)
	}
	if len(s.Ciphertext) != 12+len(rfcSeed20)+16 {
		t.Fatalf("ciphertext length %d", len(s.Ciphertext))
	}
	s2, _ := ring.Seal(rfcSeed20, aad)
	if bytes.Equal(s.Ciphertext, s2.Ciphertext) {
		t.Fatal("nonce reused")
	}
	pt, err := ring.Open(s, aad)
	if err != nil || !bytes.Equal(pt, rfcSeed20) {
		t.Fatalf("Open = %v", err)
	}
	tests := map[string]struct {
		s   Sealed
		aad []byte
		err error
	}{
		"other row":     {s, AAD("mfa_devices", "dev-2"), ErrOpen},
		"other table":   {s, AAD("tokens", "dev-1"), ErrOpen},
		"shifted split": {s, AAD("mfa_devicesd", "ev-1"), ErrOpen},
		"no aad":        {s, nil, ErrOpen},
		"tampered":      {Sealed{KeyID: "k1", Ciphertext: append(bytes.Clone(s.Ciphertext[:len(s.Ciphertext)-1]), s.Ciphertext[len(s.Ciphertext)-1]^1)}, aad, ErrOpen},
		"truncated":     {Sealed{KeyID: "k1", Ciphertext: s.Ciphertext[:5]}, aad, ErrOpen},
		"unknown key":   {Sealed{KeyID: "k9", Ciphertext: s.Ciphertext}, aad, ErrUnknownKey},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ring.Open(tt.s, tt.aad); !errors.Is(err, tt.err) {
				t.Fatalf("Open = %v, want %v", err, tt.err)
			}
		})
	}
	for _, o := range []string{fmt.Sprint(s), fmt.Sprintf("%#v %x", s, s), func() string { b, _ := json.Marshal(s); return string(b) }()} {
		if strings.Contains(o, fmt.Sprint(s.Ciphertext[:4])) || strings.Contains(o, fmt.Sprintf("%x", s.Ciphertext[:8])) {
			t.Fatalf("Sealed printed its bytes: %s", o)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	old, _ := ParseKeyring("k1:" + b64key(1))
	aad := AAD("mfa_devices", "dev-1")
	s, _ := old.Seal(rfcSeed20, aad)
	rotated, _ := ParseKeyring("k2:" + b64key(2) + ",k1:" + b64key(1))
	if !rotated.NeedsReseal(s) || old.NeedsReseal(s) {
		t.Fatal("NeedsReseal wrong")
	}
	pt, err := rotated.Open(s, aad)
	if err != nil || !bytes.Equal(pt, rfcSeed20) {
		t.Fatalf("old key does not open: %v", err)
	}
	s2, err := rotated.Reseal(s, aad)
	if err != nil || s2.KeyID != "k2" || rotated.NeedsReseal(s2) {
		t.Fatalf("Reseal = %v, %v", s2, err)
	}
	if _, err := old.Open(s2, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old ring opened new key: %v", err)
	}
	// Same id, different key material: refused, not garbage.
	imposter, _ := ParseKeyring("k2:" + b64key(3))
	if _, err := imposter.Open(s2, aad); !errors.Is(err, ErrOpen) {
		t.Fatalf("imposter: %v", err)
	}
}

func TestDeriveKey(t *testing.T) {
	ring, err := ParseKeyring("k1:" + b64key(1))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ParseKeyring("k2:" + b64key(2) + ",k1:" + b64key(1))
	if err != nil {
		t.Fatal(err)
	}
	sms := ring.DeriveKey("sms-code")
	// HKDF-SHA256(ikm = 32×0x01, salt = "mfaflow/derive/v1", info = "sms-code"), computed independently.
	const want = "9302f705d589ddb32899db4d69a400ac5e1763e04e61b52e1c6badec23d0d894"
	if got := fmt.Sprintf("%x", sms); got != want {
		t.Fatalf("DeriveKey = %s, want %s", got, want)
	}
	tests := []struct {
		name  string
		other []byte
		same  bool
	}{
		{"same ring and label", ring.DeriveKey("sms-code"), true},
		{"another label", ring.DeriveKey("other"), false},
		{"rotated ring", rotated.DeriveKey("sms-code"), false},
		{"not the raw key", bytes.Repeat([]byte{1}, KeyLen), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.other) != KeyLen {
				t.Fatalf("len = %d, want %d", len(tt.other), KeyLen)
			}
			if bytes.Equal(sms, tt.other) != tt.same {
				t.Fatalf("equal = %v, want %v", !tt.same, tt.same)
			}
		})
	}
	var nilRing *Keyring
	if nilRing.DeriveKey("x") != nil {
		t.Fatal("nil ring derived a key")
	}
}

package mfa

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"testing"
)

func TestLinkTokenSurvivesRotation(t *testing.T) {
	oldRing, err := ParseKeyring("old:" + b64key(1))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ParseKeyring("new:" + b64key(2) + ",old:" + b64key(1))
	if err != nil {
		t.Fatal(err)
	}
	retired, err := ParseKeyring("new:" + b64key(2))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("apl_1")
	tok := oldRing.LinkToken("cancel", msg)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(tok) || LinkTokenKeyID(tok) != "old" {
		t.Fatalf("token %q: want base64url characters and key id old", tok)
	}
	if tok != oldRing.LinkToken("cancel", msg) {
		t.Fatal("LinkToken is not deterministic")
	}
	// A token without a key id, as made before tokens carried one.
	m := hmac.New(sha256.New, oldRing.DeriveKey("cancel"))
	m.Write(msg)
	legacy := base64.RawURLEncoding.EncodeToString(m.Sum(nil))

	tests := []struct {
		name  string
		ring  *Keyring
		label string
		msg   string
		token string
		id    string
		ok    bool
	}{
		{"same ring", oldRing, "cancel", "apl_1", tok, "old", true},
		{"after rotation", rotated, "cancel", "apl_1", tok, "old", true},
		{"new key after rotation", rotated, "cancel", "apl_1", rotated.LinkToken("cancel", msg), "new", true},
		{"key removed", retired, "cancel", "apl_1", tok, "", false},
		{"legacy after rotation", rotated, "cancel", "apl_1", legacy, "old", true},
		{"legacy key removed", retired, "cancel", "apl_1", legacy, "", false},
		{"other message", rotated, "cancel", "apl_2", tok, "", false},
		{"other label", rotated, "pages", "apl_1", tok, "", false},
		{"key id swapped", rotated, "cancel", "apl_1", "new" + tok[len("old"):], "", false},
		{"empty", rotated, "cancel", "apl_1", "", "", false},
		{"nil ring", nil, "cancel", "apl_1", tok, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := tt.ring.CheckLinkToken(tt.label, []byte(tt.msg), tt.token)
			if ok != tt.ok || id != tt.id {
				t.Fatalf("CheckLinkToken = %q, %v; want %q, %v", id, ok, tt.id, tt.ok)
			}
		})
	}
	if (*Keyring)(nil).LinkToken("cancel", msg) != "" {
		t.Fatal("a nil ring made a token")
	}
}

func TestShortLinkTokenSurvivesRotation(t *testing.T) {
	oldRing, err := ParseKeyring("old:" + b64key(1))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := ParseKeyring("new:" + b64key(2) + ",old:" + b64key(1))
	if err != nil {
		t.Fatal(err)
	}
	retired, err := ParseKeyring("new:" + b64key(2))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("apl_1")
	short, full := oldRing.ShortLinkToken("cancel", msg), oldRing.LinkToken("cancel", msg)
	if len(short) != len("old")+ShortLinkMACLen || short != full[:len(short)] {
		t.Fatalf("short token %q: want the key id and the first %d characters of the MAC of %q", short, ShortLinkMACLen, full)
	}
	flip := []byte(short)
	flip[len(flip)-1] ^= 1 // still base64url: only the MAC's last bits change
	tests := []struct {
		name  string
		ring  *Keyring
		msg   string
		short string
		want  string
	}{
		{"same ring", oldRing, "apl_1", short, full},
		{"after rotation", rotated, "apl_1", short, full},
		{"new key after rotation", rotated, "apl_1", rotated.ShortLinkToken("cancel", msg), rotated.LinkToken("cancel", msg)},
		{"key removed", retired, "apl_1", short, ""},
		{"other message", rotated, "apl_1x", short, ""},
		{"one bit off", rotated, "apl_1", string(flip), ""},
		{"no key id", rotated, "apl_1", short[len("old"):], ""},
		{"key id swapped", rotated, "apl_1", "new" + short[len("old"):], ""},
		{"full token is not short", rotated, "apl_1", full, ""},
		{"empty", rotated, "apl_1", "", ""},
		{"nil ring", nil, "apl_1", short, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.ring.ExpandShortLinkToken("cancel", []byte(tt.msg), tt.short)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("ExpandShortLinkToken = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

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

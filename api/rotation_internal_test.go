package api

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
)

// rings returns a ring, the ring after a rotation (a new key first, the old
// one second) and the ring with the old key removed.
func rings(t *testing.T) (old, rotated, retired *mfa.Keyring) {
	t.Helper()
	old, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	retired, err = mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	rotated, err = mfa.ParseKeyring(retired.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return old, rotated, retired
}

func TestPageTokenAcrossRotation(t *testing.T) {
	old, rotated, retired := rings(t)
	tok := (&Server{deps: Deps{Keys: old}}).sealPageToken("q", []byte("temporal-page"))
	if !strings.HasPrefix(tok, old.CurrentID()+".") {
		t.Fatalf("page token does not name its key id %s", old.CurrentID())
	}
	tests := []struct {
		name  string
		keys  *mfa.Keyring
		query string
		token string
		ok    bool
	}{
		{"same ring", old, "q", tok, true},
		{"after rotation", rotated, "q", tok, true},
		{"key removed", retired, "q", tok, false},
		{"other query", rotated, "r", tok, false},
		{"no key id", rotated, "q", tok[strings.Index(tok, ".")+1:], false},
		{"other key id", rotated, "q", retired.CurrentID() + tok[strings.Index(tok, "."):], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := (&Server{deps: Deps{Keys: tt.keys}}).openPageToken(tt.query, tt.token)
			if ok != tt.ok || ok && string(got) != "temporal-page" {
				t.Fatalf("openPageToken = %q, %v; want ok %v", got, ok, tt.ok)
			}
		})
	}
}

func TestDocumentLinkAcrossRotation(t *testing.T) {
	old, rotated, retired := rings(t)
	link := (&Server{deps: Deps{Keys: old}}).documentLink("apl_1", "id_front", "rev-1", time.Now().Add(time.Minute))
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	msg := documentLinkMsg("apl_1", "id_front", "rev-1", q.Get("exp"))
	if mfa.LinkTokenKeyID(q.Get("sig")) != old.CurrentID() {
		t.Fatal("the link's sig does not name its key id")
	}
	for _, tt := range []struct {
		name string
		keys *mfa.Keyring
		ok   bool
	}{{"same ring", old, true}, {"after rotation", rotated, true}, {"key removed", retired, false}} {
		if _, ok := tt.keys.CheckLinkToken(documentLinkLabel, msg, q.Get("sig")); ok != tt.ok {
			t.Errorf("%s: checks = %v, want %v", tt.name, ok, tt.ok)
		}
	}
}

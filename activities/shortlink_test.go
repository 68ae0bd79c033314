package activities_test

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/mfa"
)

// TestOwnerCancelShortToken: a short token is 16 base64url characters that
// read back to their appeal id under the key that made them, also after a
// rotation; another key reads another id; ids the API does not make, and
// an empty ring, get the full link; tokens of different appeals differ in
// most characters and never show the id.
func TestOwnerCancelShortToken(t *testing.T) {
	k1, err := mfa.GenerateKeyring()
	must(t, err)
	k2, err := mfa.GenerateKeyring()
	must(t, err)
	rotated, err := mfa.ParseKeyring(k2.Encode() + "," + k1.Encode())
	must(t, err)
	seen := map[string]bool{}
	for range 200 {
		raw := make([]byte, 12)
		_, _ = rand.Read(raw)
		id := activities.AppealIDPrefix + base64.RawURLEncoding.EncodeToString(raw)
		tok, ok := activities.OwnerCancelShortToken(k1, id)
		if !ok || len(tok) != 16 || seen[tok] || strings.Contains(id, tok) {
			t.Fatalf("token %q of %s (ok %v, seen %v)", tok, id, ok, seen[tok])
		}
		seen[tok] = true
		if got := activities.OwnerCancelShortAppealIDs(k1, tok); len(got) != 1 || got[0] != id {
			t.Fatalf("k1 reads %s back as %v", id, got)
		}
		if got := activities.OwnerCancelShortAppealIDs(rotated, tok); len(got) != 2 || got[1] != id || got[0] == id {
			t.Fatalf("after a rotation %s reads as %v, want [other, %s]", tok, got, id)
		}
		if slices.Contains(activities.OwnerCancelShortAppealIDs(k2, tok), id) {
			t.Fatal("another key reads the same id")
		}
	}
	if u := activities.OwnerCancelShortURL(k1, "https://mfa.example.cn/", "apl_n1"); !strings.HasPrefix(u, "https://mfa.example.cn/appeals/apl_n1/owner-cancel?token=") {
		t.Fatalf("an id the API does not make got %q, want the full link", u)
	}
	if _, ok := activities.OwnerCancelShortToken(nil, "apl_Xk3b9QmZ0aLpQ1w2"); ok {
		t.Fatal("an empty ring made a short token")
	}
	for _, bad := range []string{"", "short", "Xk3b9QmZ0aLpQ1w2x", "Xk3b9QmZ0aLpQ1w*"} {
		if got := activities.OwnerCancelShortAppealIDs(k1, bad); got != nil {
			t.Errorf("token %q reads as %v", bad, got)
		}
	}
	u := activities.OwnerCancelShortURL(k1, "https://mfa.example.cn/", "apl_Xk3b9QmZ0aLpQ1w2")
	if len(u) != len("https://mfa.example.cn/c/")+16 {
		t.Fatalf("short link %q", u)
	}
}

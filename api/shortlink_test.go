package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// TestShortCancelLink follows the SMS's short cancel link on both stores:
// a token of an appeal (also one made before a key rotation) goes to the
// owner's cancel page with a full cancel token that checks; a damaged
// token, one of an appeal that does not exist, and one that is not a token
// are 404 not_found, in the request's language.
func TestShortCancelLink(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		oldRing, err := mfa.GenerateKeyring()
		if err != nil {
			t.Fatal(err)
		}
		newRing, err := mfa.GenerateKeyring()
		if err != nil {
			t.Fatal(err)
		}
		rotated, err := mfa.ParseKeyring(newRing.Encode() + "," + oldRing.Encode())
		if err != nil {
			t.Fatal(err)
		}
		const id, other = "apl_Xk3b9QmZ0aLpQ1w2", "apl_Yk3b9QmZ0aLpQ1w2"
		if _, err := st.CreateAppeal(context.Background(), store.Appeal{ID: id, AccountID: "acct-short", ApplicantType: "personal",
			TokenHash: store.TokenHash("apt_short"), Status: "collecting_documents"}); err != nil {
			t.Fatal(err)
		}
		deps := testDeps(st)
		deps.Keys = rotated
		base := serve(t, deps)
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get := func(path, lang string) (*http.Response, []byte) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			if lang != "" {
				req.Header.Set("Accept-Language", lang)
			}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp, b
		}
		path := func(ring *mfa.Keyring, id string) string {
			return strings.TrimPrefix(activities.OwnerCancelShortURL(ring, "https://x", id), "https://x")
		}
		oldShort, newShort := path(oldRing, id), path(rotated, id)
		if !strings.HasPrefix(newShort, "/c/") || len(newShort) != len("/c/")+16 || oldShort == newShort {
			t.Fatalf("short links %s, %s: want /c/ and 16 characters, one per key", oldShort, newShort)
		}
		for name, p := range map[string]string{"made with the current key": newShort, "made before the rotation": oldShort} {
			resp, _ := get(p, "")
			loc := resp.Header.Get("Location")
			prefix := "/appeals/" + id + "/owner-cancel?token="
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) ||
				!activities.CheckOwnerCancelToken(rotated, id, strings.TrimPrefix(loc, prefix)) {
				t.Fatalf("%s: GET %s = %d to %q, want 303 to %s<a token that checks>", name, p, resp.StatusCode, loc, prefix)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: Cache-Control %q, Referrer-Policy %q", name, resp.Header.Get("Cache-Control"), resp.Header.Get("Referrer-Policy"))
			}
		}
		for name, p := range map[string]string{
			"damaged":        damage(newShort),
			"no such appeal": path(rotated, other),
			"not a token":    "/c/not*a*token",
			"too long":       newShort + "A",
		} {
			for _, lang := range []string{"", "zh-CN", "en"} {
				resp, b := get(p, lang)
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != http.StatusNotFound || e.Error.Code != "not_found" {
					t.Fatalf("%s (%q): GET %s = %d %s, want 404 not_found", name, lang, p, resp.StatusCode, b)
				}
				if zh := strings.ContainsFunc(e.Error.Message, func(r rune) bool { return unicode.Is(unicode.Han, r) }); zh != (lang != "en") {
					t.Errorf("%s: Accept-Language %q answered %q", name, lang, e.Error.Message)
				}
			}
		}
	})
}

// damage changes the last character of s.
func damage(s string) string {
	last := "x"
	if strings.HasSuffix(s, last) {
		last = "y"
	}
	return s[:len(s)-1] + last
}

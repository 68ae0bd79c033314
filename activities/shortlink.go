package activities

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/mfaflow/mfaflow/mfa"
)

// AppealIDPrefix starts every appeal id. The API makes the rest from 12
// random bytes in base64url: 16 characters.
const AppealIDPrefix = "apl_"

// OwnerCancelShortKeyLabel labels the key (Keyring.DeriveKeyFor) of the
// short cancel links.
const OwnerCancelShortKeyLabel = "appeal-owner-cancel-short/v1"

// shortLinkRounds is the number of Feistel rounds of the short link's
// permutation; four already make a strong pseudorandom permutation of a
// pseudorandom round function (Luby–Rackoff), eight leave a margin.
const shortLinkRounds = 8

// OwnerCancelShortURL returns the owner's cancel link for an SMS,
// <publicURL>/c/<token>, short enough that the appeal SMS fits one segment
// (70 characters in Chinese) under a public URL of up to 22 characters. The
// token is the appeal id's 96 random bits through a keyed permutation
// (OwnerCancelShortToken): 16 base64url characters, which only the key ring
// can make or read, and which name the appeal without showing its id. GET
// /c/{token} reads it back (OwnerCancelShortAppealIDs), finds the appeal and
// redirects to the OwnerCancelURL. It is deterministic, so a retried notice
// carries the same link. An appeal id the API did not make (not "apl_" and
// 16 base64url characters), or an empty ring, gets the OwnerCancelURL.
func OwnerCancelShortURL(keys *mfa.Keyring, publicURL, appealID string) string {
	token, ok := OwnerCancelShortToken(keys, appealID)
	if !ok {
		return OwnerCancelURL(keys, publicURL, appealID)
	}
	return strings.TrimRight(publicURL, "/") + "/c/" + token
}

// OwnerCancelShortToken returns the short link token of appealID under the
// ring's current key, and false for an empty ring or an appeal id the API
// did not make.
func OwnerCancelShortToken(keys *mfa.Keyring, appealID string) (string, bool) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(appealID, AppealIDPrefix))
	if !strings.HasPrefix(appealID, AppealIDPrefix) || err != nil || len(raw) != 12 {
		return "", false
	}
	key, ok := keys.DeriveKeyFor(keys.CurrentID(), OwnerCancelShortKeyLabel)
	if !ok {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(permute96(key, raw, false)), true
}

// OwnerCancelShortAppealIDs returns the appeal ids that token stands for
// under each key of the ring, the current key first: a token made before a
// key rotation reads right under its key while that stays in the ring. Any
// 16 base64url characters read as some id under each key, so the caller
// keeps only an id of an existing appeal; guessing the token of an appeal
// is guessing 96 bits. It returns nil for a token that is not 16 base64url
// characters or an empty ring.
func OwnerCancelShortAppealIDs(keys *mfa.Keyring, token string) []string {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if len(token) != 16 || err != nil || len(raw) != 12 {
		return nil
	}
	var ids []string
	for _, id := range keys.IDs() {
		key, ok := keys.DeriveKeyFor(id, OwnerCancelShortKeyLabel)
		if !ok {
			continue
		}
		ids = append(ids, AppealIDPrefix+base64.RawURLEncoding.EncodeToString(permute96(key, raw, true)))
	}
	return ids
}

// permute96 is a keyed permutation of 12 bytes (inverse when back is
// true): a balanced Feistel network of shortLinkRounds rounds over two
// 6-byte halves, each round function the first 6 bytes of HMAC-SHA256 of
// the round number and one half under key.
func permute96(key, in []byte, back bool) []byte {
	l, r := append([]byte(nil), in[:6]...), append([]byte(nil), in[6:]...)
	f := func(round int, half []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte{byte(round)})
		m.Write(half)
		return m.Sum(nil)[:6]
	}
	for i := range shortLinkRounds {
		if back {
			// Undo round shortLinkRounds-1-i: (l, r) was (r', l' ^ F(r')).
			round := shortLinkRounds - 1 - i
			fr := f(round, l)
			prevR := l
			prevL := make([]byte, 6)
			for j := range prevL {
				prevL[j] = r[j] ^ fr[j]
			}
			l, r = prevL, prevR
			continue
		}
		fr := f(i, r)
		next := make([]byte, 6)
		for j := range next {
			next[j] = l[j] ^ fr[j]
		}
		l, r = r, next
	}
	return append(l, r...)
}

package mfa

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// LinkMACLen is the length of the MAC at the end of a LinkToken: 43
// base64url characters (HMAC-SHA256, no padding).
const LinkMACLen = 43

// LinkToken returns a token for msg under label, for links such as the
// owner's cancel link: the id of the current key followed by the base64url
// (no padding) HMAC-SHA256 of msg with the key the ring derives for label
// from that key. Key ids are base64url characters too, so the token fits in
// a URL as it is. It is deterministic: the same ring, label and msg give the
// same token. It returns "" for a nil or empty ring.
func (k *Keyring) LinkToken(label string, msg []byte) string {
	id := k.CurrentID()
	if id == "" {
		return ""
	}
	key, _ := k.DeriveKeyFor(id, label)
	return id + linkMAC(key, msg)
}

// CheckLinkToken reports whether token is the LinkToken of msg under label
// made with any key of the ring, and returns that key's id, so a link made
// before a rotation works while its key stays in the ring. A token of
// LinkMACLen characters alone, with no key id (made before tokens carried
// one), is checked against every key of the ring. The MACs are compared in
// constant time. It reports false for a nil or empty ring.
func (k *Keyring) CheckLinkToken(label string, msg []byte, token string) (keyID string, ok bool) {
	if k == nil || len(token) < LinkMACLen {
		return "", false
	}
	id, mac := token[:len(token)-LinkMACLen], token[len(token)-LinkMACLen:]
	ids := []string{id}
	if id == "" {
		ids = k.IDs()
	}
	for _, id := range ids {
		key, found := k.DeriveKeyFor(id, label)
		if found && hmac.Equal([]byte(mac), []byte(linkMAC(key, msg))) {
			return id, true
		}
	}
	return "", false
}

// LinkTokenKeyID returns the key id a LinkToken names, "" for a token
// without one (or too short to be a token). It does not check the token.
func LinkTokenKeyID(token string) string {
	if len(token) <= LinkMACLen {
		return ""
	}
	return token[:len(token)-LinkMACLen]
}

func linkMAC(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

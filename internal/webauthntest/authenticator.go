// Package webauthntest is a software authenticator for tests: it answers
// the options of navigator.credentials.create and .get with the JSON a
// browser sends, signed with a real P-256 key (attestation "none"), so the
// server's WebAuthn checks run unchanged without a browser. It also makes
// the wrong answers a test needs: another origin, a tampered signature, a
// counter set back. The browser tests use Chromium's virtual authenticator
// instead.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator is one credential on a software key.
type Authenticator struct {
	Origin  string // the origin the "browser" reports in clientDataJSON
	Counter uint32 // the signature counter; Get adds 1 first unless ZeroCounter
	// ZeroCounter makes the key report 0 every time, as synced passkeys do.
	ZeroCounter bool
	AAGUID      [16]byte

	key        *ecdsa.PrivateKey
	credID     []byte
	rpID       string
	userHandle []byte
}

// New returns an authenticator whose browser runs at origin.
func New(origin string) *Authenticator {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &Authenticator{Origin: origin, key: key, credID: id}
}

// CredentialID returns the credential's id, base64url.
func (a *Authenticator) CredentialID() string { return b64(a.credID) }

var b64 = base64.RawURLEncoding.EncodeToString

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
	} `json:"publicKey"`
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) authData(rpID string, flags byte, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	out := append([]byte{}, h[:]...)
	out = append(out, flags)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], a.Counter)
	out = append(out, n[:]...)
	return append(out, attested...)
}

// Create answers creation options ({"publicKey":{…}}) with a registration
// response (the PublicKeyCredential JSON).
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: creation options: %w", err)
	}
	if o.PublicKey.Challenge == "" || o.PublicKey.RP.ID == "" {
		return nil, errors.New("webauthntest: creation options lack a challenge or rp id")
	}
	a.rpID = o.PublicKey.RP.ID
	if a.userHandle, _ = unb64(o.PublicKey.User.ID); a.userHandle == nil {
		a.userHandle = []byte(o.PublicKey.User.ID)
	}
	x, y := a.key.X.FillBytes(make([]byte, 32)), a.key.Y.FillBytes(make([]byte, 32))
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		return nil, err
	}
	attested := append([]byte{}, a.AAGUID[:]...)
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(a.credID)))
	attested = append(attested, a.credID...)
	attested = append(attested, cose...)
	// UP, UV, AT.
	ad := a.authData(a.rpID, 0x01|0x04|0x40, attested)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key", "authenticatorAttachment": "cross-platform",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(a.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64(att),
			"transports":        []string{"usb"},
		},
	})
}

// Get answers request options ({"publicKey":{…}}) with an assertion.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: request options: %w", err)
	}
	rpID := o.PublicKey.RPID
	if rpID == "" {
		rpID = a.rpID
	}
	if !a.ZeroCounter {
		a.Counter++
	}
	ad := a.authData(rpID, 0x01|0x04, nil)
	cd := a.clientData("webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key", "authenticatorAttachment": "cross-platform",
		"clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(cd),
			"authenticatorData": b64(ad),
			"signature":         b64(sig),
			"userHandle":        b64(a.userHandle),
		},
	})
}

// Tamper flips one bit of an assertion's signature.
func Tamper(assertion []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(assertion, &m); err != nil {
		panic(err)
	}
	resp := m["response"].(map[string]any)
	sig, _ := unb64(resp["signature"].(string))
	sig[len(sig)-1] ^= 1
	resp["signature"] = b64(sig)
	out, _ := json.Marshal(m)
	return out
}

package mfa

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
)

// WebAuthn errors. ErrAssertion and ErrAttestation wrap ErrInvalidCode, so a
// refused ceremony spends the failure budget and answers like a wrong code.
var (
	// ErrAssertion reports an assertion that does not verify: tampered, for
	// another challenge, origin or account, or by an unknown credential.
	ErrAssertion error = &kindError{msg: "mfa: webauthn assertion refused", kind: ErrInvalidCode}
	// ErrAttestation reports a registration response that does not verify,
	// or an authenticator model outside the allow-list.
	ErrAttestation error = &kindError{msg: "mfa: webauthn registration refused", kind: ErrInvalidCode}
	// ErrCloned reports an assertion whose signature counter did not go up
	// although the key counts: a cloned key may be in use.
	ErrCloned = errors.New("mfa: webauthn signature counter went backwards: possible cloned key")
	// ErrWebAuthnConfig reports a relying-party configuration go-webauthn refuses.
	ErrWebAuthnConfig = errors.New("mfa: invalid webauthn configuration")
)

// WebAuthnConfig is the relying party: the console's domain and origins.
type WebAuthnConfig struct {
	RPID    string   // e.g. "console.example.com"; "localhost" in dev (an IP is refused)
	RPName  string   // shown by the browser, e.g. "mfaflow"
	Origins []string // e.g. "https://console.example.com"
	// AAGUIDs, when set, is the allow-list of authenticator models.
	AAGUIDs []string
	// Timeout of a ceremony; 0: 5 minutes.
	Timeout time.Duration
}

// WebAuthn runs registration and assertion ceremonies (go-webauthn) for
// security keys and passkeys: user verification preferred, attestation
// none. It holds no state: sessions are kept by the caller.
type WebAuthn struct {
	w       *webauthn.WebAuthn
	timeout time.Duration
}

// NewWebAuthn returns the relying party of cfg. It returns an error
// matching ErrWebAuthnConfig for a configuration go-webauthn refuses (an IP
// address as RP ID, an origin that is not a URL, a malformed AAGUID).
func NewWebAuthn(cfg WebAuthnConfig) (*WebAuthn, error) {
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	c := &webauthn.Config{
		RPID:                  cfg.RPID,
		RPDisplayName:         cfg.RPName,
		RPOrigins:             cfg.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: timeout, TimeoutUVD: timeout},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: timeout, TimeoutUVD: timeout},
		},
	}
	if c.RPDisplayName == "" {
		c.RPDisplayName = "mfaflow"
	}
	if len(cfg.AAGUIDs) > 0 {
		c.Filtering = &webauthn.FilteringConfig{}
		for _, s := range cfg.AAGUIDs {
			id, err := uuid.Parse(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("%w: aaguid %q", ErrWebAuthnConfig, s)
			}
			c.Filtering.PermittedAAGUIDs = append(c.Filtering.PermittedAAGUIDs, id)
		}
	}
	w, err := webauthn.New(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWebAuthnConfig, err)
	}
	return &WebAuthn{w: w, timeout: timeout}, nil
}

// WebAuthnCredential is a registered credential as the caller stores it.
// Nothing in it is secret: the private key never leaves the authenticator.
type WebAuthnCredential struct {
	ID              []byte
	PublicKey       []byte // COSE
	SignCount       uint32
	AAGUID          []byte
	Transports      []string
	BackupEligible  bool
	BackupState     bool
	UserVerified    bool
	AttestationType string
}

// WebAuthnUser is the account as the ceremonies see it: its opaque user
// handle (never the account id), a display name and its credentials.
type WebAuthnUser struct {
	Handle      []byte
	Name        string
	Credentials []WebAuthnCredential
}

type rpUser struct {
	u     WebAuthnUser
	creds []webauthn.Credential
}

func (r rpUser) WebAuthnID() []byte                         { return r.u.Handle }
func (r rpUser) WebAuthnName() string                       { return r.u.Name }
func (r rpUser) WebAuthnDisplayName() string                { return r.u.Name }
func (r rpUser) WebAuthnCredentials() []webauthn.Credential { return r.creds }

func newRPUser(u WebAuthnUser) rpUser {
	r := rpUser{u: u}
	for _, c := range u.Credentials {
		var ts []protocol.AuthenticatorTransport
		for _, t := range c.Transports {
			ts = append(ts, protocol.AuthenticatorTransport(t))
		}
		r.creds = append(r.creds, webauthn.Credential{
			ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType, Transport: ts,
			Flags:         webauthn.CredentialFlags{UserPresent: true, UserVerified: c.UserVerified, BackupEligible: c.BackupEligible, BackupState: c.BackupState},
			Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
		})
	}
	return r
}

func descriptors(creds []WebAuthnCredential) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(creds))
	for _, c := range creds {
		d := protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: c.ID}
		for _, t := range c.Transports {
			d.Transport = append(d.Transport, protocol.AuthenticatorTransport(t))
		}
		out = append(out, d)
	}
	return out
}

// NewUserHandle returns a new random WebAuthn user handle (64 bytes, as
// the specification recommends); it never holds the account id.
func NewUserHandle() []byte {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		panic("mfa: crypto/rand: " + err.Error())
	}
	return b
}

// BeginRegistration starts registering a new credential for u, excluding
// its existing ones. It returns the options for navigator.credentials.create
// (the JSON {"publicKey":{…}} the browser expects, binary fields base64url)
// and the session to keep server-side until FinishRegistration.
func (w *WebAuthn) BeginRegistration(u WebAuthnUser) (options json.RawMessage, session []byte, err error) {
	creation, sd, err := w.w.BeginRegistration(newRPUser(u), webauthn.WithExclusions(descriptors(u.Credentials)))
	if err != nil {
		return nil, nil, fmt.Errorf("mfa: webauthn begin registration: %w", err)
	}
	if options, err = json.Marshal(creation); err != nil {
		return nil, nil, err
	}
	session, err = json.Marshal(sd)
	return options, session, err
}

// FinishRegistration verifies the browser's PublicKeyCredential JSON
// against the session and returns the new credential. It returns an error
// matching ErrAttestation for a response that does not verify (another
// challenge or origin, tampered, expired, a model outside the allow-list).
func (w *WebAuthn) FinishRegistration(u WebAuthnUser, session, credential []byte) (WebAuthnCredential, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(session, &sd); err != nil {
		return WebAuthnCredential{}, fmt.Errorf("mfa: webauthn session: %w", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%w: %s", ErrAttestation, protocolReason(err))
	}
	c, err := w.w.CreateCredential(newRPUser(u), sd, parsed)
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("%w: %s", ErrAttestation, protocolReason(err))
	}
	out := WebAuthnCredential{
		ID: c.ID, PublicKey: c.PublicKey, SignCount: c.Authenticator.SignCount, AAGUID: c.Authenticator.AAGUID,
		BackupEligible: c.Flags.BackupEligible, BackupState: c.Flags.BackupState, UserVerified: c.Flags.UserVerified,
		AttestationType: c.AttestationType,
	}
	for _, t := range c.Transport {
		out.Transports = append(out.Transports, string(t))
	}
	return out, nil
}

// BeginLogin starts an assertion by one of u's credentials. It returns the
// options for navigator.credentials.get ({"publicKey":{…}}) and the
// session to keep server-side, single use, until FinishLogin.
func (w *WebAuthn) BeginLogin(u WebAuthnUser) (options json.RawMessage, session []byte, err error) {
	assertion, sd, err := w.w.BeginLogin(newRPUser(u), webauthn.WithAllowedCredentials(descriptors(u.Credentials)))
	if err != nil {
		return nil, nil, fmt.Errorf("mfa: webauthn begin login: %w", err)
	}
	if options, err = json.Marshal(assertion); err != nil {
		return nil, nil, err
	}
	session, err = json.Marshal(sd)
	return options, session, err
}

// LoginResult is a verified assertion: which credential, and the counter it reported.
type LoginResult struct {
	CredentialID []byte
	SignCount    uint32
	UserVerified bool
}

// FinishLogin verifies the browser's assertion JSON against the session
// and u's credentials. It returns an error matching ErrAssertion for one
// that does not verify, and ErrCloned when the credential's signature
// counter did not go up although it counts (a key that always reports 0,
// as synced passkeys do, is fine): the caller refuses it and reports it.
func (w *WebAuthn) FinishLogin(u WebAuthnUser, session, assertion []byte) (LoginResult, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(session, &sd); err != nil {
		return LoginResult{}, fmt.Errorf("mfa: webauthn session: %w", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(assertion)
	if err != nil {
		return LoginResult{}, fmt.Errorf("%w: %s", ErrAssertion, protocolReason(err))
	}
	c, err := w.w.ValidateLogin(newRPUser(u), sd, parsed)
	if err != nil {
		return LoginResult{}, fmt.Errorf("%w: %s", ErrAssertion, protocolReason(err))
	}
	res := LoginResult{CredentialID: c.ID, SignCount: c.Authenticator.SignCount, UserVerified: parsed.Response.AuthenticatorData.Flags.HasUserVerified()}
	if c.Authenticator.CloneWarning {
		return res, ErrCloned
	}
	for _, k := range u.Credentials {
		if bytes.Equal(k.ID, c.ID) {
			return res, nil
		}
	}
	return LoginResult{}, fmt.Errorf("%w: unknown credential", ErrAssertion)
}

// protocolReason is a short, secret-free reason from a go-webauthn error.
func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.Details != "" {
			return pe.Type + ": " + pe.Details
		}
		return pe.Type
	}
	return "malformed"
}

// knownModels names a few common authenticator models by AAGUID; the rest
// show as their AAGUID. (With attestation "none" browsers may zero it.)
var knownModels = map[string]string{
	"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
	"ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
	"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
	"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
	"08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
	"adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
}

// AuthenticatorModel returns the AAGUID as a UUID string and, when known,
// the model's name; both are empty for a missing or all-zero AAGUID.
func AuthenticatorModel(aaguid []byte) (id, name string) {
	u, err := uuid.FromBytes(aaguid)
	if err != nil || u == uuid.Nil {
		return "", ""
	}
	return u.String(), knownModels[u.String()]
}

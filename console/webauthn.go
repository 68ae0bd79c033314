package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
)

// Errors of WebAuthn checks besides the mfa errors (mfa.ErrAssertion, which
// is an mfa.ErrInvalidCode, and mfa.ErrCloned).
var (
	// ErrWebAuthnOff means the service has no relying party configured.
	ErrWebAuthnOff = errors.New("console: webauthn is not configured")
)

// PurposeStepUp is the purpose of a WebAuthn challenge whose assertion is a
// step-up proof (SPEC §6a).
const PurposeStepUp = "step_up"

// WebAuthnChallengeTTL is how long an assertion challenge lives.
const WebAuthnChallengeTTL = 5 * time.Minute

// WebAuthnAssertion answers a challenge: its id and the browser's
// PublicKeyCredential JSON from navigator.credentials.get.
type WebAuthnAssertion struct {
	ChallengeID string
	Credential  json.RawMessage
}

// WebAuthnChallenge is a new assertion challenge.
type WebAuthnChallenge struct {
	ID        string
	Options   json.RawMessage // for navigator.credentials.get: {"publicKey":{…}}
	ExpiresAt time.Time
}

// webauthnUser builds the account's relying-party user from its credentials.
func webauthnUser(accountID string, creds []store.WebAuthnCredential) mfa.WebAuthnUser {
	u := mfa.WebAuthnUser{Name: accountID}
	for _, c := range creds {
		if u.Handle == nil {
			u.Handle = c.UserHandle
		}
		u.Credentials = append(u.Credentials, mfa.WebAuthnCredential{
			ID: c.CredentialID, PublicKey: c.PublicKey, SignCount: c.SignCount, AAGUID: c.AAGUID, Transports: c.Transports,
			BackupEligible: c.BackupEligible, BackupState: c.BackupState, UserVerified: c.UserVerified, AttestationType: c.AttestationType,
		})
	}
	return u
}

// BeginWebAuthn starts an assertion by one of the account's WebAuthn keys
// for purpose (login, operation or step_up; an operation binds the
// challenge to op). The challenge is single use, bound to the account,
// purpose and operation, and expires in WebAuthnChallengeTTL. It returns
// ErrInvalid for a bad purpose, ErrProtectionOff when login or operation
// protection is off, ErrNoDevice when the account has no key, and
// ErrWebAuthnOff.
func (s *Service) BeginWebAuthn(ctx context.Context, accountID, purpose string, op Operation) (WebAuthnChallenge, error) {
	if s.WebAuthn == nil {
		return WebAuthnChallenge{}, ErrWebAuthnOff
	}
	if _, err := s.Store.GetAccount(ctx, accountID); err != nil {
		return WebAuthnChallenge{}, err
	}
	switch purpose {
	case PurposeLogin, PurposeOperation:
		p, err := s.Store.GetProtection(ctx, accountID)
		if err != nil {
			return WebAuthnChallenge{}, err
		}
		if purpose == PurposeLogin && !p.Login || purpose == PurposeOperation && !p.Operation {
			return WebAuthnChallenge{}, ErrProtectionOff
		}
		if purpose == PurposeLogin {
			op = Operation{}
		}
	case PurposeStepUp:
		op = Operation{}
	default:
		return WebAuthnChallenge{}, ErrInvalid
	}
	creds, err := s.Store.ListWebAuthnCredentials(ctx, accountID)
	if err != nil {
		return WebAuthnChallenge{}, err
	}
	if len(creds) == 0 {
		return WebAuthnChallenge{}, ErrNoDevice
	}
	options, session, err := s.WebAuthn.BeginLogin(webauthnUser(accountID, creds))
	if err != nil {
		return WebAuthnChallenge{}, err
	}
	ch, err := s.Store.CreateWebAuthnChallenge(ctx, store.WebAuthnChallenge{AccountID: accountID, Purpose: purpose,
		Action: op.Action, Resource: op.Resource, Session: session, ExpiresAt: s.now().Add(WebAuthnChallengeTTL)})
	if err != nil {
		return WebAuthnChallenge{}, err
	}
	return WebAuthnChallenge{ID: ch.ID, Options: options, ExpiresAt: ch.ExpiresAt}, nil
}

// VerifyWebAuthn checks an assertion for the account's challenge of the
// same purpose (and, for an operation, the same action and resource) under
// the failure budget: the attempt is spent first, the challenge used up by
// compare-and-set, the assertion verified, and the key's signature counter
// advanced by compare-and-set. A counter that goes back is refused,
// audited and told to the owner as a possible cloned key (mfa.ErrCloned).
// For an operation it issues a grant, as Verify does; every success is
// audited and counts as a use of the device for an open appeal. It returns
// mfa.ErrAssertion (an mfa.ErrInvalidCode) for a challenge that is
// unknown, another account's, used, expired or for another purpose, and
// for an assertion that does not verify; mfa.ErrReplayed when a
// concurrent use of the key won; and the budget's errors.
func (s *Service) VerifyWebAuthn(ctx context.Context, c Caller, accountID, purpose string, op Operation, a WebAuthnAssertion) (VerifyResult, error) {
	if s.WebAuthn == nil {
		return VerifyResult{}, ErrWebAuthnOff
	}
	action := "mfa.verify." + purpose
	if purpose == PurposeStepUp {
		action, op = "mfa.step_up", Operation{}
	} else if purpose == PurposeLogin {
		op = Operation{}
	}
	var dev store.WebAuthnCredential
	var cloned bool
	err := s.verifier().Attempt(ctx, accountID, func() error {
		now := s.now()
		ch, err := s.Store.UseWebAuthnChallenge(ctx, a.ChallengeID, accountID, now)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrChallengeUsed), errors.Is(err, store.ErrChallengeExpired):
			return fmt.Errorf("%w: challenge unusable", mfa.ErrAssertion)
		case err != nil:
			return err
		}
		if ch.Purpose != purpose || ch.Action != op.Action || ch.Resource != op.Resource {
			return fmt.Errorf("%w: challenge for another purpose", mfa.ErrAssertion)
		}
		creds, err := s.Store.ListWebAuthnCredentials(ctx, accountID)
		if err != nil {
			return err
		}
		res, err := s.WebAuthn.FinishLogin(webauthnUser(accountID, creds), ch.Session, a.Credential)
		for _, k := range creds {
			if res.CredentialID != nil && bytes.Equal(k.CredentialID, res.CredentialID) {
				dev = k
			}
		}
		if errors.Is(err, mfa.ErrCloned) {
			cloned = true
			return err
		}
		if err != nil {
			return err
		}
		ok, err := s.Store.AdvanceSignCount(ctx, dev.DeviceID, dev.SignCount, res.SignCount, now)
		if err != nil {
			return err
		}
		if !ok {
			return mfa.ErrReplayed
		}
		return nil
	})
	if cloned {
		details := map[string]string{"device_id": dev.DeviceID, "stored_sign_count": fmt.Sprint(dev.SignCount)}
		s.audit(ctx, c, accountID, "webauthn.clone_suspected", "denied", dev.DeviceID, details)
		at := s.now()
		s.notifyOwner(ctx, accountID, "webauthn_clone_suspected", "webauthn_clone", func(tx notify.Text) map[string]any {
			return map[string]any{"Time": tx.Time(at)}
		})
		return VerifyResult{}, err
	}
	if err != nil {
		s.auditRefusal(ctx, c, accountID, action, StepUpWebAuthn, err)
		return VerifyResult{}, err
	}
	res := VerifyResult{DeviceID: dev.DeviceID}
	details := map[string]string{"device_id": dev.DeviceID, "method": "webauthn"}
	if purpose == PurposeOperation {
		token, id, err := grantToken()
		if err != nil {
			return VerifyResult{}, err
		}
		res.Grant, res.ExpiresAt = token, dbTime(s.now().Add(s.grantTTL()))
		if _, err := s.Store.CreateGrant(ctx, store.Grant{ID: id, AccountID: accountID, Action: op.Action, Resource: op.Resource,
			DeviceID: dev.DeviceID, ExpiresAt: res.ExpiresAt}); err != nil {
			return VerifyResult{}, err
		}
		details["action"], details["resource"] = op.Action, op.Resource
	}
	s.audit(ctx, c, accountID, action, "ok", dev.DeviceID, details)
	if d, err := s.Store.GetDevice(ctx, dev.DeviceID); err == nil {
		s.factorUsed(ctx, accountID, FactorUse{Kind: FactorDevice, ID: d.ID, ActiveSince: d.BoundAt})
	}
	return res, nil
}

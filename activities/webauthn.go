package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// BeginWebAuthnRegistration starts registering a security key or passkey
// for the binding: it returns the options for navigator.credentials.create
// and the relying party's session, which the workflow keeps (encrypted,
// like every payload) until the confirm and never shows. The user handle is
// the account's (from its keys) or a new random one. It fails with
// ErrTypeMalformed when WebAuthn is not configured.
func (a *Activities) BeginWebAuthnRegistration(ctx context.Context, in workflows.BeginWebAuthnInput) (workflows.BeginWebAuthnResult, error) {
	var out workflows.BeginWebAuthnResult
	if a.WebAuthn == nil {
		return out, businessErr("binding: security keys are not configured", workflows.ErrTypeMalformed, nil)
	}
	u, err := a.webauthnUser(ctx, in.AccountID, nil)
	if err != nil {
		return out, err
	}
	options, session, err := a.WebAuthn.BeginRegistration(u)
	if err != nil {
		return out, fmt.Errorf("begin webauthn registration: %w", err)
	}
	return workflows.BeginWebAuthnResult{CreationOptions: string(options), Session: session, UserHandle: u.Handle}, nil
}

// webauthnUser is the account as the relying party sees it; handle, when
// set, is the one the registration began with.
func (a *Activities) webauthnUser(ctx context.Context, accountID string, handle []byte) (mfa.WebAuthnUser, error) {
	creds, err := a.Store.ListWebAuthnCredentials(ctx, accountID)
	if err != nil {
		return mfa.WebAuthnUser{}, fmt.Errorf("list webauthn credentials: %w", err)
	}
	u := mfa.WebAuthnUser{Name: accountID, Handle: handle}
	for _, c := range creds {
		if u.Handle == nil {
			u.Handle = c.UserHandle
		}
		u.Credentials = append(u.Credentials, mfa.WebAuthnCredential{ID: c.CredentialID, PublicKey: c.PublicKey, SignCount: c.SignCount, Transports: c.Transports})
	}
	if u.Handle == nil {
		u.Handle = mfa.NewUserHandle()
	}
	return u, nil
}

// ConfirmWebAuthn verifies the browser's registration response against the
// binding's session, stores the key as an active device with its
// credential, turns the ticked scopes on, notifies and audits, like the
// other confirms. A retried attempt whose device exists completes without
// verifying again. It fails with ErrTypeCredentialRefused (the response
// does not verify, or the model is not allowed), ErrTypeSerialUnavailable
// (the key is registered already), ErrTypeStepUpRequired, ErrTypeAppealOpen
// or ErrTypeTooManyDevices.
func (a *Activities) ConfirmWebAuthn(ctx context.Context, in workflows.ConfirmWebAuthnInput) (workflows.ConfirmResult, error) {
	var out workflows.ConfirmResult
	id := BindDeviceID(in.BindingID, "")
	d, err := a.Store.GetDevice(ctx, id)
	switch {
	case err == nil:
		if d.AccountID != in.AccountID || d.Type != store.WebAuthn || d.Status != store.DeviceActive {
			return out, businessErr("binding: device in another state", workflows.ErrTypeWrongState, nil)
		}
		return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP)
	case !errors.Is(err, store.ErrNotFound):
		return out, fmt.Errorf("confirm webauthn: %w", err)
	}
	if a.WebAuthn == nil {
		return out, businessErr("binding: security keys are not configured", workflows.ErrTypeMalformed, nil)
	}
	if err := a.checkFactorRule(ctx, in.AccountID, in.StepUp); err != nil {
		return out, err
	}
	if err := a.checkDeviceLimit(ctx, in.AccountID); err != nil {
		return out, err
	}
	u, err := a.webauthnUser(ctx, in.AccountID, in.UserHandle)
	if err != nil {
		return out, err
	}
	c, err := a.WebAuthn.FinishRegistration(u, in.Session, []byte(in.Credential))
	if errors.Is(err, mfa.ErrAttestation) {
		a.warn(ctx, "webauthn registration refused", "binding_id", in.BindingID, "error", err)
		return out, businessErr("binding: the security key's answer could not be verified", workflows.ErrTypeCredentialRefused, nil)
	}
	if err != nil {
		return out, fmt.Errorf("confirm webauthn: %w", err)
	}
	name := in.Name
	if name == "" {
		name = "security key"
	}
	d, err = a.Store.CreateWebAuthnDevice(ctx, store.Device{ID: id, AccountID: in.AccountID, Name: name}, store.WebAuthnCredential{
		AccountID: in.AccountID, CredentialID: c.ID, UserHandle: u.Handle, PublicKey: c.PublicKey, SignCount: c.SignCount, AAGUID: c.AAGUID,
		Transports: c.Transports, BackupEligible: c.BackupEligible, BackupState: c.BackupState, UserVerified: c.UserVerified, AttestationType: c.AttestationType,
	})
	if errors.Is(err, store.ErrConflict) {
		if d, gerr := a.Store.GetDevice(ctx, id); gerr == nil && d.AccountID == in.AccountID && d.Status == store.DeviceActive {
			return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP) // a concurrent attempt made it
		}
		return out, businessErr("binding: this security key is registered already", workflows.ErrTypeSerialUnavailable, nil)
	}
	if err != nil {
		return out, fmt.Errorf("confirm webauthn: %w", err)
	}
	return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP)
}

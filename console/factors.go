package console

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
)

// Errors of the factor-set rule (SPEC §6a).
var (
	// ErrStepUpRequired refuses a change to the factor set of an account
	// that has an active factor, made without a proof of one.
	ErrStepUpRequired = errors.New("console: a proof of an active factor is required")
	// ErrAppealOpen refuses a change to the factor set while an unbind
	// appeal of the account is open.
	ErrAppealOpen = errors.New("console: an unbind appeal of the account is open")
)

// RecoveryKeyLabel labels the key (Keyring.DeriveKeyFor) of recovery code hashes.
const RecoveryKeyLabel = "recovery-code"

// Factor kinds a FactorUse names.
const (
	FactorDevice       = "device"        // a device code (or assertion) verified
	FactorRecoveryCode = "recovery_code" // a recovery code used
	FactorResync       = "resync"        // a hardware card resynchronised
)

// FactorUse is a successful use of a factor, for the open appeal's rule:
// only a factor active before the appeal was filed cancels it.
type FactorUse struct {
	Kind        string    // FactorDevice, FactorRecoveryCode or FactorResync
	ID          string    // the device or recovery code
	ActiveSince time.Time // when the device was bound or the code's set made
}

// Proof is a step-up proof: a code of an active device, a recovery code or
// a WebAuthn assertion for a challenge of purpose step_up.
type Proof struct {
	Code         string
	RecoveryCode string
	WebAuthn     *WebAuthnAssertion
}

// Empty reports whether p carries nothing.
func (p Proof) Empty() bool { return p.Code == "" && p.RecoveryCode == "" && p.WebAuthn == nil }

// Step-up methods, as StepUp reports them and the audit records them.
const (
	StepUpNone         = "none" // the account has no active device: the first binding
	StepUpCode         = "code"
	StepUpRecoveryCode = "recovery_code"
	StepUpWebAuthn     = "webauthn"
)

// StepUpResult says how a change was authorised.
type StepUpResult struct {
	Method   string // StepUpNone, StepUpCode or StepUpRecoveryCode
	DeviceID string // the device whose code was the proof
}

// StepUp authorises change (an audit action such as "device.bind") to the
// account's factor set (SPEC §6a). An account with no active MFA device
// needs no proof (its first binding rests on the SMS identity check);
// otherwise p must prove possession of a factor active now, before the
// change: a device code or a recovery code, each through the failure
// budget and the replay guard. It returns ErrAppealOpen while an unbind
// appeal of the account is open (without spending the proof),
// ErrStepUpRequired without a proof, store.ErrNotFound for an unknown
// account, and the mfa errors of a wrong proof. Refusals are audited.
func (s *Service) StepUp(ctx context.Context, c Caller, accountID string, p Proof, change string) (StepUpResult, error) {
	if _, err := s.Store.GetAccount(ctx, accountID); err != nil {
		return StepUpResult{}, err
	}
	open, err := s.openAppeal(ctx, accountID)
	if err != nil {
		return StepUpResult{}, err
	}
	if open {
		s.audit(ctx, c, accountID, change, "denied", "", map[string]string{"reason": "appeal_open"})
		return StepUpResult{}, ErrAppealOpen
	}
	devs, err := s.activeDevices(ctx, accountID, factorTypes...)
	if err != nil {
		return StepUpResult{}, err
	}
	if len(devs) == 0 {
		return StepUpResult{Method: StepUpNone}, nil
	}
	hasCodes := slices.ContainsFunc(devs, func(d store.Device) bool { return d.Type != store.WebAuthn })
	details := map[string]string{"for": change}
	switch {
	case p.Code != "" && !hasCodes:
		// Only keys: no code can be right. Counted like a wrong code.
		err := s.verifier().Attempt(ctx, accountID, func() error { return mfa.ErrInvalidCode })
		s.audit(ctx, c, accountID, "mfa.step_up", "invalid", "", map[string]string{"for": change, "method": StepUpCode})
		return StepUpResult{}, err
	case p.WebAuthn != nil:
		details["method"] = StepUpWebAuthn
		res, err := s.VerifyWebAuthn(ctx, c, accountID, PurposeStepUp, Operation{}, *p.WebAuthn)
		if err != nil {
			return StepUpResult{}, err
		}
		return StepUpResult{Method: StepUpWebAuthn, DeviceID: res.DeviceID}, nil
	case p.Code != "":
		details["method"] = StepUpCode
		deviceID, err := s.checkCode(ctx, c, store.CheckRequest{AccountID: accountID, Types: mfaTypes}, p.Code, "mfa.step_up",
			func(deviceID string, f *store.CheckFinish) error {
				details["device_id"] = deviceID
				f.Audit = s.auditEntry(c, accountID, "mfa.step_up", "ok", deviceID, details)
				return nil
			})
		if err != nil {
			return StepUpResult{}, err
		}
		return StepUpResult{Method: StepUpCode, DeviceID: deviceID}, nil
	case p.RecoveryCode != "":
		details["method"] = StepUpRecoveryCode
		if _, err := s.useRecoveryCode(ctx, c, accountID, p.RecoveryCode, "mfa.step_up", details); err != nil {
			return StepUpResult{}, err
		}
		return StepUpResult{Method: StepUpRecoveryCode}, nil
	}
	s.audit(ctx, c, accountID, change, "denied", "", map[string]string{"reason": "step_up_required"})
	return StepUpResult{}, ErrStepUpRequired
}

// openAppeal reports whether an unbind appeal of the account is open.
func (s *Service) openAppeal(ctx context.Context, accountID string) (bool, error) {
	appeals, err := s.Store.ListAppeals(ctx, "", accountID, 10)
	if err != nil {
		return false, err
	}
	for _, a := range appeals {
		if a.ClosedAt.IsZero() {
			return true, nil
		}
	}
	return false, nil
}

// factorUsed tells the hook of a successful use of a factor while an
// appeal is open.
func (s *Service) factorUsed(ctx context.Context, accountID string, u FactorUse) {
	if s.OnFactorUsed != nil {
		s.OnFactorUsed(ctx, accountID, u)
	}
}

// auditRefusal audits a refused check of method as action, with the
// outcome its error means: locked, replayed or invalid. Other errors (the
// store's) are not refusals and are not audited.
func (s *Service) auditRefusal(ctx context.Context, c Caller, accountID, action, method string, err error) {
	outcome := "invalid"
	switch {
	case errors.Is(err, mfa.ErrLocked):
		outcome = "locked"
	case errors.Is(err, mfa.ErrReplayed):
		outcome = "replayed"
	case !errors.Is(err, mfa.ErrInvalidCode):
		return
	}
	s.audit(ctx, c, accountID, action, outcome, "", map[string]string{"method": method})
}

// newRecoverySet makes a set of recovery codes for the account: the codes
// to show once and the rows to store (keyed hashes with the current key id).
func (s *Service) newRecoverySet(accountID string) ([]string, []store.RecoveryCode, error) {
	codes, err := mfa.NewRecoveryCodes(nil, mfa.RecoveryCodeCount)
	if err != nil {
		return nil, nil, err
	}
	keyID := s.Keys.CurrentID()
	key, ok := s.Keys.DeriveKeyFor(keyID, RecoveryKeyLabel)
	if !ok {
		return nil, nil, errors.New("console: no key to hash recovery codes")
	}
	rows := make([]store.RecoveryCode, len(codes))
	for i, code := range codes {
		n, err := mfa.NormalizeRecoveryCode(code)
		if err != nil {
			return nil, nil, err
		}
		rows[i] = store.RecoveryCode{AccountID: accountID, KeyID: keyID, Hash: mfa.HashRecoveryCode(key, accountID, n)}
	}
	return codes, rows, nil
}

// InitRecoveryCodes gives the account its first set of recovery codes when
// it has no unused one (after its first device binds) and returns the
// codes, to be shown once; it returns nil when the account already has a
// set. The owner is told; the codes never leave this answer.
func (s *Service) InitRecoveryCodes(ctx context.Context, c Caller, accountID string) ([]string, error) {
	codes, rows, err := s.newRecoverySet(accountID)
	if err != nil {
		return nil, err
	}
	ok, err := s.Store.ReplaceRecoveryCodes(ctx, accountID, rows, true)
	if err != nil || !ok {
		return nil, err
	}
	s.audit(ctx, c, accountID, "recovery_codes.create", "ok", "", map[string]string{"count": strconv.Itoa(len(codes))})
	return codes, nil
}

// RegenerateRecoveryCodes replaces the account's recovery codes with a new
// set after a step-up proof, and returns the codes to show once. The old
// set stops working at once. It returns the errors of StepUp, and
// ErrNoDevice for an account without an active device (it has no set).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, c Caller, accountID string, p Proof) ([]string, error) {
	up, err := s.StepUp(ctx, c, accountID, p, "recovery_codes.regenerate")
	if err != nil {
		return nil, err
	}
	if up.Method == StepUpNone {
		return nil, ErrNoDevice
	}
	codes, rows, err := s.newRecoverySet(accountID)
	if err != nil {
		return nil, err
	}
	if _, err := s.Store.ReplaceRecoveryCodes(ctx, accountID, rows, false); err != nil {
		return nil, err
	}
	s.audit(ctx, c, accountID, "recovery_codes.regenerate", "ok", up.DeviceID,
		map[string]string{"count": strconv.Itoa(len(codes)), "step_up": up.Method})
	at := s.now()
	s.notifyOwner(ctx, accountID, "recovery_codes_regenerated", "recovery_codes_new", func(tx notify.Text) map[string]any {
		return map[string]any{"Time": tx.Time(at)}
	})
	return codes, nil
}

// RecoveryCodesRemaining returns how many unused recovery codes the account has.
func (s *Service) RecoveryCodesRemaining(ctx context.Context, accountID string) (int, error) {
	rows, err := s.Store.ListRecoveryCodes(ctx, accountID)
	return len(rows), err
}

// VerifyRecoveryCode passes the account's login protection once with a
// recovery code. It returns ErrProtectionOff when login protection is off,
// and the errors of useRecoveryCode.
func (s *Service) VerifyRecoveryCode(ctx context.Context, c Caller, accountID, code string) (int, error) {
	p, err := s.Store.GetProtection(ctx, accountID)
	if err != nil {
		return 0, err
	}
	if _, err := s.Store.GetAccount(ctx, accountID); err != nil {
		return 0, err
	}
	if !p.Login {
		return 0, ErrProtectionOff
	}
	return s.useRecoveryCode(ctx, c, accountID, code, "mfa.verify.login", map[string]string{"method": StepUpRecoveryCode})
}

// useRecoveryCode uses one of the account's recovery codes under the
// failure budget: the attempt is spent first, the code compared with every
// unused code's keyed hash, and the matching row used by compare-and-set.
// A success resets the budget, is audited as action and tells the owner
// how many codes are left, which it returns. It returns mfa.ErrMalformedCode
// or mfa.ErrInvalidCode for a code that is not one of the account's unused
// codes, mfa.ErrReplayed when a concurrent use won, and the errors of the
// budget (a *mfa.LockedError).
func (s *Service) useRecoveryCode(ctx context.Context, c Caller, accountID, code, action string, details map[string]string) (int, error) {
	var used store.RecoveryCode
	var left int
	err := s.verifier().Attempt(ctx, accountID, func() error {
		n, err := mfa.NormalizeRecoveryCode(code)
		if err != nil {
			return err
		}
		rows, err := s.Store.ListRecoveryCodes(ctx, accountID)
		if err != nil {
			return err
		}
		found := -1
		for i, r := range rows {
			key, ok := s.Keys.DeriveKeyFor(r.KeyID, RecoveryKeyLabel)
			if ok && mfa.CheckRecoveryCode(key, accountID, n, r.Hash) {
				found = i
			}
		}
		if found < 0 {
			return mfa.ErrInvalidCode
		}
		ok, err := s.Store.UseRecoveryCode(ctx, accountID, rows[found].ID, s.now())
		if err != nil {
			return err
		}
		if !ok {
			return mfa.ErrReplayed
		}
		used, left = rows[found], len(rows)-1
		return nil
	})
	if err != nil {
		s.auditRefusal(ctx, c, accountID, action, StepUpRecoveryCode, err)
		return 0, err
	}
	d := map[string]string{"recovery_code_id": used.ID, "remaining": strconv.Itoa(left)}
	for k, v := range details {
		d[k] = v
	}
	s.audit(ctx, c, accountID, action, "ok", used.ID, d)
	msg, at := "recovery_code_used", s.now()
	if left <= 3 {
		msg = "recovery_code_low"
	}
	s.notifyOwner(ctx, accountID, "recovery_code_used", msg, func(tx notify.Text) map[string]any {
		return map[string]any{"Time": tx.Time(at), "Left": left}
	})
	s.factorUsed(ctx, accountID, FactorUse{Kind: FactorRecoveryCode, ID: used.ID, ActiveSince: used.CreatedAt})
	return left, nil
}

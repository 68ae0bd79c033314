// Package console is the console's side of MFA outside binding: verifying
// codes for login and operation protection, operation grants, protection
// settings, hardware resync, ordinary unbinding and the account's
// login-protection method. Every check goes through the mfa package with
// the store's replay guard and the account's one failure budget.
package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
)

// Errors returned by Service besides the mfa and store errors (mfa.ErrInvalidCode,
// mfa.ErrReplayed, mfa.ErrLocked, mfa.ErrResyncFailed, store.ErrNotFound,
// store.ErrUnavailable, store.ErrGrantMismatch, store.ErrGrantUsed, store.ErrGrantExpired).
var (
	ErrProtectionOff = errors.New("console: protection is off for this purpose")
	ErrNoDevice      = errors.New("console: the account has no active MFA device")
	ErrNotHardware   = errors.New("console: resync is for hardware token cards")
	ErrInvalid       = errors.New("console: invalid request")
)

// Purposes of a verification.
const (
	PurposeLogin     = "login"
	PurposeOperation = "operation"
)

// Service answers the console.
type Service struct {
	Store    store.Store
	Keys     *mfa.Keyring
	Notifier notify.Notifier
	Policy   mfa.LockPolicy
	Log      *slog.Logger
	// GrantTTL is how long an operation grant lives; 0: 5 minutes.
	GrantTTL time.Duration
	// ResyncWindow is the resync search window in steps; 0: 10.
	ResyncWindow int
	Now          func() time.Time
	// OnFactorUsed, when set, is told of every successful use of a factor
	// while an unbind appeal of the account is open (one in cool-down is
	// cancelled by a factor that was active when it was filed).
	OnFactorUsed func(ctx context.Context, accountID string, u FactorUse)
	// WebAuthn is the relying party of security keys and passkeys; nil
	// turns WebAuthn off (ErrWebAuthnOff).
	WebAuthn *mfa.WebAuthn
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Service) verifier() *mfa.Verifier {
	return &mfa.Verifier{Steps: s.Store, Budget: s.Store, Policy: s.Policy, Now: s.now, OnLock: s.onLock}
}

// Operation names a sensitive operation.
type Operation struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// VerifyResult is a successful verification.
type VerifyResult struct {
	DeviceID  string
	Grant     string    // operation purpose only: the single-use grant token
	ExpiresAt time.Time // of the grant
}

// Caller says who asked, for the audit log.
type Caller struct {
	Actor    string
	RemoteIP string
}

// Verify checks code for the account's login or operation protection. For an
// operation it issues a single-use grant bound to the account, action and
// resource. It returns ErrProtectionOff when the purpose is not protected,
// ErrNoDevice, and the mfa errors.
func (s *Service) Verify(ctx context.Context, c Caller, accountID, code, purpose string, op Operation) (VerifyResult, error) {
	var cp store.CheckPurpose
	switch purpose {
	case PurposeLogin:
		cp = store.CheckLogin
	case PurposeOperation:
		cp = store.CheckOperation
	default:
		return VerifyResult{}, ErrInvalid
	}
	action := "mfa.verify." + purpose
	var res VerifyResult
	deviceID, err := s.checkCode(ctx, c, store.CheckRequest{AccountID: accountID, Purpose: cp, Types: mfaTypes}, code, action,
		func(deviceID string, f *store.CheckFinish) error {
			details := map[string]string{"device_id": deviceID}
			if purpose == PurposeOperation {
				details["action"], details["resource"] = op.Action, op.Resource
				token, id, err := grantToken()
				if err != nil {
					return err
				}
				res.Grant, res.ExpiresAt = token, dbTime(s.now().Add(s.grantTTL()))
				f.Grant = &store.Grant{ID: id, AccountID: accountID, Action: op.Action, Resource: op.Resource, DeviceID: deviceID, ExpiresAt: res.ExpiresAt}
			}
			f.Audit = s.auditEntry(c, accountID, action, "ok", deviceID, details)
			return nil
		})
	if err != nil {
		return VerifyResult{}, err
	}
	res.DeviceID = deviceID
	return res, nil
}

// mfaTypes are the device types whose codes pass login and operation
// protection (a WebAuthn key passes them by assertion, VerifyWebAuthn).
var mfaTypes = []store.DeviceType{store.Virtual, store.Hardware}

// factorTypes are the device types of the account's factor set.
var factorTypes = []store.DeviceType{store.Virtual, store.Hardware, store.WebAuthn}

// dbTime rounds t as the stores keep times (microseconds).
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (s *Service) grantTTL() time.Duration {
	if s.GrantTTL == 0 {
		return 5 * time.Minute
	}
	return s.GrantTTL
}

// checkCode runs one code check in one store call (store.CheckStore's
// Check): the store reads the account's protection and devices and spends
// one attempt of its failure budget; then, inside the store's call, the
// code is evaluated against every device (mfa.MatchAny) and the matched
// step consumed, recording the use, clearing the budget and writing what
// success fills in (the audit entry, a grant) in the same transaction.
// Refusals are audited here, replays also notified, once the store has
// answered: nothing about the code is known before its attempt is counted.
// It returns the device that matched; ErrProtectionOff when r.Purpose is
// not protected and ErrNoDevice, both without spending; and the mfa and
// store errors.
func (s *Service) checkCode(ctx context.Context, c Caller, r store.CheckRequest, code, action string,
	success func(deviceID string, f *store.CheckFinish) error) (string, error) {
	now := s.now()
	r.Now, r.Policy = now, s.Policy.LockFor
	accountID := r.AccountID
	var (
		reseal      []store.Device // devices whose secrets are sealed with an old key
		matchFailed bool           // the code itself was refused
	)
	out, err := s.Store.Check(ctx, r, func(start store.CheckStart) ([]store.CheckFinish, error) {
		reseal, matchFailed = reseal[:0], false
		cands := make([]mfa.Candidate, 0, len(start.Devices))
		for _, d := range start.Devices {
			secret, err := s.Keys.Open(d.Secret, mfa.AAD(string(store.SealedDevices), d.ID))
			if err != nil {
				return nil, fmt.Errorf("console: device %s: %w", d.ID, err)
			}
			if s.Keys.NeedsReseal(d.Secret) {
				reseal = append(reseal, d)
			}
			p, err := params(d)
			if err != nil {
				return nil, err
			}
			cands = append(cands, mfa.Candidate{DeviceID: d.ID, Secret: secret, Opts: mfa.VerifyOpts{Params: p, Drift: d.Drift}})
		}
		matched, err := mfa.MatchAny(cands, code, now)
		if err != nil {
			matchFailed = true
			return nil, err
		}
		fs := make([]store.CheckFinish, 0, len(matched))
		for _, m := range matched {
			deviceID := start.Devices[m.Index].ID
			f := store.CheckFinish{AccountID: accountID, DeviceID: deviceID, Step: m.Step, At: now}
			if success != nil {
				if err := success(deviceID, &f); err != nil {
					return nil, err
				}
				// Every finish is built before any is tried: each keeps
				// its own details (a callback may reuse one map).
				f.Audit.Details = maps.Clone(f.Audit.Details)
			}
			fs = append(fs, f)
		}
		return fs, nil
	})
	if err != nil {
		if len(out.Finishes) > 0 {
			return "", fmt.Errorf("console: consume step: %w", err)
		}
		return "", err
	}
	start := out.Start
	switch {
	case !r.Protected(start.Protection):
		return "", ErrProtectionOff
	case len(start.Devices) == 0:
		return "", ErrNoDevice
	case !start.Spent:
		return "", errors.New("console: the store did not spend the attempt")
	}
	if err := s.verifier().Admit(ctx, accountID, start.Budget, start.Allowed, now); err != nil {
		s.audit(ctx, c, accountID, action, "locked", "", nil)
		return "", err
	}
	s.resealDevices(ctx, reseal)
	if err := out.EvalErr; err != nil {
		if matchFailed {
			s.audit(ctx, c, accountID, action, "invalid", "", nil)
		}
		return "", err
	}
	if out.Consumed >= 0 {
		deviceID := out.Finishes[out.Consumed].DeviceID
		// Whoever still has the device is its owner: an appeal to unbind
		// it that is cooling down cancels itself.
		if start.OpenAppeal {
			for _, d := range start.Devices {
				if d.ID == deviceID {
					s.factorUsed(ctx, accountID, FactorUse{Kind: FactorDevice, ID: deviceID, ActiveSince: d.BoundAt})
				}
			}
		}
		return deviceID, nil
	}
	s.audit(ctx, c, accountID, action, "replayed", "", nil)
	s.notifyOwner(ctx, accountID, "code_reused", "code_reused", nil)
	return "", mfa.ErrReplayed
}

// resealDevices seals again, with the ring's current key, the secrets of
// devices a check found sealed with an older one (as inventory.OpenSecret
// does on other paths). A failure is retried on the next use.
func (s *Service) resealDevices(ctx context.Context, devs []store.Device) {
	for _, d := range devs {
		_, _ = inventory.OpenSecret(ctx, s.Store, s.Keys, store.SealedDevices, d.ID, d.Secret)
	}
}

func (s *Service) activeDevices(ctx context.Context, accountID string, types ...store.DeviceType) ([]store.Device, error) {
	all, err := s.Store.ListDevices(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var out []store.Device
	for _, d := range all {
		if d.Status != store.DeviceActive {
			continue
		}
		for _, t := range types {
			if d.Type == t {
				out = append(out, d)
			}
		}
	}
	return out, nil
}

func params(d store.Device) (mfa.Params, error) {
	alg, err := mfa.ParseAlgorithm(d.Algorithm)
	if err != nil {
		return mfa.Params{}, err
	}
	return mfa.Params{Algorithm: alg, Digits: d.Digits, Period: time.Duration(d.PeriodSeconds) * time.Second}, nil
}

// onLock audits a lock and tells the owner.
func (s *Service) onLock(ctx context.Context, accountID string, st mfa.BudgetState) {
	details := map[string]string{"failures": strconv.Itoa(st.Failures)}
	if st.Hard {
		details["hard"] = "true"
	} else {
		details["locked_until"] = st.LockedUntil.UTC().Format(time.RFC3339)
	}
	s.audit(ctx, Caller{Actor: "system"}, accountID, "mfa.lock", "locked", "", details)
	msg := "locked_until"
	if st.Hard {
		msg = "locked_hard"
	}
	s.notifyOwner(ctx, accountID, "mfa_locked", msg, func(tx notify.Text) map[string]any {
		return map[string]any{"Until": tx.Time(st.LockedUntil)}
	})
}

// grantToken returns a new 256-bit grant token and its stored id (SHA-256).
func grantToken() (token, id string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = "grt_" + base64.RawURLEncoding.EncodeToString(b)
	return token, store.GrantID(token), nil
}

// ConsumeGrant uses a grant for exactly its operation, once. It returns
// store.ErrNotFound, store.ErrGrantMismatch, store.ErrGrantUsed or
// store.ErrGrantExpired; each refusal is audited.
func (s *Service) ConsumeGrant(ctx context.Context, c Caller, accountID, token string, op Operation) (store.Grant, error) {
	g, err := s.Store.ConsumeGrant(ctx, store.GrantID(token), accountID, op.Action, op.Resource, s.now())
	details := map[string]string{"action": op.Action, "resource": op.Resource}
	if err != nil {
		outcome := "denied"
		if errors.Is(err, store.ErrUnavailable) {
			return g, err
		}
		details["reason"] = grantRefusal(err)
		s.audit(ctx, c, accountID, "grant.consume", outcome, "", details)
		return g, err
	}
	s.audit(ctx, c, accountID, "grant.consume", "ok", g.DeviceID, details)
	return g, nil
}

// grantRefusal names a refused grant use in the audit with the code the API
// answers, never the error's text.
func grantRefusal(err error) string {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrGrantMismatch):
		return "grant_mismatch"
	case errors.Is(err, store.ErrGrantUsed):
		return "grant_used"
	case errors.Is(err, store.ErrGrantExpired):
		return "grant_expired"
	}
	return "error"
}

// SetProtection changes the protection scope after a step-up proof (a code
// of an active device or a recovery code; see StepUp), audits and tells the
// old channels. It returns ErrNoDevice for an account without an active
// device, and the errors of StepUp.
func (s *Service) SetProtection(ctx context.Context, c Caller, accountID string, proof Proof, p store.Protection) (store.Protection, error) {
	up, err := s.StepUp(ctx, c, accountID, proof, "protection.set")
	if err != nil {
		return store.Protection{}, err
	}
	if up.Method == StepUpNone {
		return store.Protection{}, ErrNoDevice
	}
	deviceID := up.DeviceID
	out, err := s.Store.SetProtection(ctx, accountID, p)
	if err != nil {
		return store.Protection{}, err
	}
	s.audit(ctx, c, accountID, "protection.set", "ok", deviceID, map[string]string{"login": strconv.FormatBool(p.Login), "operation": strconv.FormatBool(p.Operation), "step_up": up.Method})
	at := s.now()
	s.notifyOwner(ctx, accountID, "protection_changed", "protection_changed", func(tx notify.Text) map[string]any {
		return map[string]any{"Time": tx.Time(at), "Login": tx.OnOff(p.Login), "Operation": tx.OnOff(p.Operation),
			"Scopes": tx.Scopes(p.Login, p.Operation)}
	})
	return out, nil
}

// Resync re-aligns the account's hardware card with two consecutive codes in
// a wide window and records the drift. A failure says nothing about which
// code was right (mfa.ErrResyncFailed) and counts against the budget.
func (s *Service) Resync(ctx context.Context, c Caller, accountID, code1, code2 string) (store.Device, int64, error) {
	devs, err := s.activeDevices(ctx, accountID, store.Hardware)
	if err != nil {
		return store.Device{}, 0, err
	}
	if len(devs) == 0 {
		return store.Device{}, 0, ErrNotHardware
	}
	window := s.ResyncWindow
	if window == 0 {
		window = 10
	}
	v := s.verifier()
	// Find the card the codes belong to; the budget is spent once either way
	// and nothing is revealed while the account is locked.
	var card store.Device
	var secret []byte
	var opts mfa.ResyncOpts
	for _, d := range devs {
		sec, err := inventory.OpenSecret(ctx, s.Store, s.Keys, store.SealedDevices, d.ID, d.Secret)
		if err != nil {
			return store.Device{}, 0, err
		}
		p, err := params(d)
		if err != nil {
			return store.Device{}, 0, err
		}
		o := mfa.ResyncOpts{Params: p, Window: window, CurrentDrift: d.Drift, Now: s.now()}
		if _, _, err := mfa.Resync(sec, code1, code2, o); err == nil {
			card, secret, opts = d, sec, o
			break
		}
	}
	if card.ID == "" {
		err := v.Attempt(ctx, accountID, func() error { return mfa.ErrResyncFailed })
		s.audit(ctx, c, accountID, "device.resync", "invalid", "", nil)
		return store.Device{}, 0, err
	}
	// Drift and used step are recorded together (compare-and-set on the step).
	var drift int64
	err = v.Attempt(ctx, accountID, func() error {
		d, step, err := mfa.Resync(secret, code1, code2, opts)
		if err != nil {
			return err
		}
		ok, err := s.Store.ResyncDevice(ctx, card.ID, d, step)
		if err != nil {
			return err
		}
		if !ok {
			return mfa.ErrReplayed
		}
		drift = d
		return nil
	})
	if err != nil {
		s.audit(ctx, c, accountID, "device.resync", "invalid", "", nil)
		return store.Device{}, 0, err
	}
	s.audit(ctx, c, accountID, "device.resync", "ok", card.ID, map[string]string{"drift_steps": strconv.FormatInt(drift, 10), "serial": card.Serial})
	// A resync proves possession of the card as much as a code does.
	s.factorUsed(ctx, accountID, FactorUse{Kind: FactorResync, ID: card.ID, ActiveSince: card.BoundAt})
	card.Drift = drift
	return card, drift, nil
}

// Unbind revokes one of the account's devices after a step-up proof (a code
// of any of its active devices, or a recovery code; see StepUp), returns a
// hardware card to the pool, audits and tells the old channels. Removing
// the last device also retires the recovery codes: an account without a
// device has no MFA, and its next first binding makes a new set. It
// returns store.ErrNotFound for a device of another account, and the
// errors of StepUp.
func (s *Service) Unbind(ctx context.Context, c Caller, accountID, deviceID string, proof Proof) error {
	d, err := s.Store.GetDevice(ctx, deviceID)
	if err != nil {
		return err
	}
	if d.AccountID != accountID || d.Status != store.DeviceActive || !d.Type.MFA() {
		return store.ErrNotFound
	}
	up, err := s.StepUp(ctx, c, accountID, proof, "device.unbind")
	if err != nil {
		return err
	}
	if _, err := s.Store.RevokeDevice(ctx, deviceID, s.now()); err != nil {
		return err
	}
	if d.Type == store.Hardware && d.Serial != "" {
		if _, err := s.Store.ReleaseToken(ctx, d.Serial, d.ID); err != nil {
			s.logger().WarnContext(ctx, "release token failed", "device_id", d.ID, "err", err)
		}
	}
	details := map[string]string{"type": string(d.Type), "step_up": up.Method}
	if up.DeviceID != "" {
		details["verified_with"] = up.DeviceID
	}
	left, err := s.activeDevices(ctx, accountID, mfaTypes...)
	if err == nil && len(left) == 0 {
		if n, err := s.Store.ClearRecoveryCodes(ctx, accountID); err != nil {
			s.logger().WarnContext(ctx, "clear recovery codes failed", "account_id", accountID, "err", err)
		} else {
			details["recovery_codes_cleared"] = strconv.Itoa(n)
		}
	}
	s.audit(ctx, c, accountID, "device.unbind", "ok", deviceID, details)
	at := s.now()
	s.notifyOwner(ctx, accountID, "device_unbound", "device_removed", func(tx notify.Text) map[string]any {
		return map[string]any{"Device": tx.Device(d.Type, d.Serial, d.Name), "Kind": tx.Kind(d.Type), "Time": tx.Time(at)}
	})
	return nil
}

// LoginVerify checks the account's login-protection code by its method:
// the security-center authenticator for ordinary accounts, the MFA devices
// for beta accounts.
func (s *Service) LoginVerify(ctx context.Context, c Caller, accountID, code string) (string, error) {
	return s.checkCode(ctx, c, store.CheckRequest{AccountID: accountID}, code, "login.verify", nil)
}

// Unlock clears the account's failure budget and any lock on it, timed or
// hard (the hard lock at the ceiling lasts until this or an approved unbind
// appeal), audits it under the caller and tells the owner. It returns
// store.ErrNotFound for an unknown account.
func (s *Service) Unlock(ctx context.Context, c Caller, accountID string) error {
	if _, err := s.Store.GetAccount(ctx, accountID); err != nil {
		return err
	}
	if err := s.Store.ResetBudget(ctx, accountID); err != nil {
		return err
	}
	s.audit(ctx, c, accountID, "mfa.unlock", "ok", "", nil)
	s.notifyOwner(ctx, accountID, "mfa_unlocked", "unlocked", nil)
	return nil
}

// ProvisionSecurityCenter creates the account's security-center
// authenticator (the platform's own app) and returns its device and secret
// for the app to enrol. It returns store.ErrConflict when one exists.
func (s *Service) ProvisionSecurityCenter(ctx context.Context, accountID string) (store.Device, mfa.Secret, error) {
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		return store.Device{}, nil, err
	}
	id := "sc-" + accountID
	sealed, err := s.Keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if err != nil {
		return store.Device{}, nil, err
	}
	d, err := s.Store.CreateDevice(ctx, store.Device{ID: id, AccountID: accountID, Type: store.SecurityCenter, Name: "security center",
		Secret: sealed, Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive})
	if err != nil {
		return store.Device{}, nil, err
	}
	s.audit(ctx, Caller{Actor: "system"}, accountID, "security_center.provision", "ok", id, nil)
	return d, secret, nil
}

// Devices lists the account's active MFA devices (not the security-center
// authenticator) and its protection.
func (s *Service) Devices(ctx context.Context, accountID string) ([]store.Device, store.Protection, error) {
	if _, err := s.Store.GetAccount(ctx, accountID); err != nil {
		return nil, store.Protection{}, err
	}
	devs, err := s.activeDevices(ctx, accountID, factorTypes...)
	if err != nil {
		return nil, store.Protection{}, err
	}
	p, err := s.Store.GetProtection(ctx, accountID)
	return devs, p, err
}

func (s *Service) auditEntry(c Caller, accountID, action, outcome, subject string, details map[string]string) store.AuditEntry {
	actor := c.Actor
	if actor == "" {
		actor = "console"
	}
	return store.AuditEntry{
		At: s.now().UTC(), Actor: actor, Action: action, Outcome: outcome, AccountID: accountID, Subject: subject, RemoteIP: c.RemoteIP, Details: details,
	}
}

func (s *Service) audit(ctx context.Context, c Caller, accountID, action, outcome, subject string, details map[string]string) {
	_, err := s.Store.AppendAudit(context.WithoutCancel(ctx), s.auditEntry(c, accountID, action, outcome, subject, details))
	if err != nil {
		s.logger().ErrorContext(ctx, "audit write failed", "action", action, "err", err)
	}
}

// notifyOwner tells the account's owner through the bound phone and
// e-mail: message msg of the catalog (notify.Text) in the account's
// language and time zone, fill giving its data for that reader; kind is
// the messages' kind. A failure is logged: the operation itself already
// happened.
func (s *Service) notifyOwner(ctx context.Context, accountID, kind, msg string, fill func(notify.Text) map[string]any) {
	if s.Notifier == nil {
		return
	}
	a, err := s.Store.GetAccount(ctx, accountID)
	if err != nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	id := strconv.FormatInt(s.now().UnixNano(), 36)
	tx := notify.TextFor(a, "")
	var vars map[string]any
	if fill != nil {
		vars = fill(tx)
	}
	for _, m := range []notify.Message{
		{ID: kind + "-" + accountID + "-sms-" + id, Channel: notify.SMS, To: a.BoundPhone, Kind: kind, Body: tx.SMS(msg, vars)},
		{ID: kind + "-" + accountID + "-email-" + id, Channel: notify.Email, To: a.Email, Kind: kind, Body: tx.Email(msg, vars)},
	} {
		if m.To == "" {
			continue
		}
		if err := s.Notifier.Notify(ctx, m); err != nil {
			s.logger().WarnContext(ctx, "notify failed", "kind", kind, "channel", m.Channel, "err", err)
		}
	}
}

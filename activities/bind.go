package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// Binding's audit action, SMS purpose and derived-key label.
const (
	AuditDeviceBind = "device.bind"
	AuditMFALock    = "mfa.lock" // outcome "locked" when a lock starts, "denied" for an attempt refused under it
	PurposeBind     = "bind_device"
	// SMSKeyLabel labels the key (Keyring.DeriveKey) of SMS code hashes.
	// A code is hashed with the current key and checked against every key
	// of the ring (checkSMSCode), so a code sent just before a rotation
	// still works in its 5 minutes.
	SMSKeyLabel = "sms-code"
)

// Notification kinds of binding.
const (
	KindSMSCode     = "sms_code"
	KindDeviceBound = "device_bound"
	KindLocked      = "mfa_locked"
)

// BindDeviceID returns the ID of the device a binding creates: a virtual
// device is "dev-<binding>", a hardware one "dev-<binding>-<serial>", so a
// retried activity finds the device it made instead of making another, and
// a card lost to another account does not block a second card.
func BindDeviceID(bindingID, serial string) string {
	if serial == "" {
		return "dev-" + bindingID
	}
	return "dev-" + bindingID + "-" + serial
}

func businessErr(msg, typ string, cause error, details ...any) error {
	return temporal.NewNonRetryableApplicationError(msg, typ, cause, details...)
}

// verifier returns the failure-budget verifier; a lock an attempt starts is
// audited and notified at once.
func (a *Activities) verifier(purpose, actorName, remoteIP string) *mfa.Verifier {
	return &mfa.Verifier{Steps: a.Store, Budget: a.Store, Policy: a.Policy, Now: a.Now,
		OnLock: func(ctx context.Context, accountID string, st mfa.BudgetState) {
			if err := a.lockNotice(ctx, accountID, purpose, actorName, remoteIP, "locked", st.LockedUntil, st.Hard); err != nil {
				a.warn(ctx, "lock not audited", "error", err)
			}
		}}
}

func (a *Activities) warn(ctx context.Context, msg string, kv ...any) {
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn(msg, kv...)
	}
}

func newID(prefix string) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + "-" + hex.EncodeToString(b[:]), nil
}

func actor(s string) string {
	if s == "" {
		return "console"
	}
	return s
}

// SendBindingSMS sends a new 6-digit SMS code to the account's bound phone
// and stores only its keyed hash in a new challenge. A retry sends a new
// code under a new challenge. It fails with ErrTypeNoAccount or
// ErrTypeNoPhone; store and notifier outages are retried.
func (a *Activities) SendBindingSMS(ctx context.Context, in workflows.SendBindingSMSInput) (workflows.SendBindingSMSResult, error) {
	var out workflows.SendBindingSMSResult
	acct, err := a.Store.GetAccount(ctx, in.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return out, businessErr("binding: account not in the directory", workflows.ErrTypeNoAccount, nil)
	}
	if err != nil {
		return out, fmt.Errorf("send binding sms: %w", err)
	}
	if acct.BoundPhone == "" {
		return out, businessErr("binding: the account has no bound phone", workflows.ErrTypeNoPhone, nil)
	}
	code, err := mfa.NewSMSCode(nil)
	if err != nil {
		return out, err
	}
	id, err := newID("sms")
	if err != nil {
		return out, err
	}
	c, err := a.Store.CreateSMSChallenge(ctx, store.SMSChallenge{
		ID:        id,
		AccountID: in.AccountID,
		Purpose:   PurposeBind,
		CodeHash:  mfa.HashSMSCode(a.Keys.DeriveKey(SMSKeyLabel), id, code),
		ExpiresAt: a.now().Add(mfa.SMSCodeTTL),
		TriesLeft: mfa.SMSCodeMaxTries,
	})
	if err != nil {
		return out, fmt.Errorf("send binding sms: %w", err)
	}
	err = a.Notify(ctx, notify.Message{
		ID:      "sms-code-" + c.ID,
		Channel: notify.SMS,
		To:      acct.BoundPhone,
		Kind:    KindSMSCode,
		Body: notify.TextFor(acct, a.issuer()).SMS("sms_code",
			map[string]any{"Code": code, "Minutes": int(mfa.SMSCodeTTL / time.Minute)}),
		Data: map[string]string{"purpose": PurposeBind, "challenge_id": c.ID},
	})
	if err != nil {
		return out, err
	}
	return workflows.SendBindingSMSResult{ChallengeID: c.ID, ExpiresAt: c.ExpiresAt}, nil
}

// CheckBindingSMS checks an SMS code under the account's failure budget and
// uses the challenge up. It fails with ErrTypeInvalidCode (details: tries
// left), ErrTypeSMSExhausted (the last try failed, or none left),
// ErrTypeExpired, ErrTypeLocked (details: retry-after seconds; the lock is
// audited and notified) or ErrTypeWrongState for an unknown challenge. A
// challenge already used (a retried attempt) succeeds.
func (a *Activities) CheckBindingSMS(ctx context.Context, in workflows.CheckBindingSMSInput) (workflows.CheckBindingSMSResult, error) {
	var out workflows.CheckBindingSMSResult
	err := a.verifier("bind_sms_code", "", "").Attempt(ctx, in.AccountID, func() error {
		now := a.now()
		c, err := a.Store.AttemptSMSChallenge(ctx, in.ChallengeID, now)
		switch {
		case errors.Is(err, store.ErrChallengeUsed):
			return nil // this binding passed it already
		case errors.Is(err, store.ErrChallengeExpired):
			return businessErr("binding: the SMS code expired", workflows.ErrTypeExpired, nil)
		case errors.Is(err, store.ErrChallengeExhausted):
			return businessErr("binding: too many wrong SMS codes", workflows.ErrTypeSMSExhausted, nil)
		case errors.Is(err, store.ErrNotFound):
			return businessErr("binding: no such SMS challenge", workflows.ErrTypeWrongState, nil)
		case err != nil:
			return fmt.Errorf("check binding sms: %w", err)
		}
		if c.AccountID != in.AccountID || c.Purpose != PurposeBind {
			return businessErr("binding: no such SMS challenge", workflows.ErrTypeWrongState, nil)
		}
		out.TriesLeft = c.TriesLeft
		if !checkSMSCode(a.Keys, c.ID, in.Code, c.CodeHash) {
			if c.TriesLeft == 0 {
				return businessErr("binding: too many wrong SMS codes", workflows.ErrTypeSMSExhausted, nil)
			}
			return businessErr("binding: wrong SMS code", workflows.ErrTypeInvalidCode, nil, c.TriesLeft)
		}
		err = a.Store.UseSMSChallenge(ctx, c.ID, now)
		switch {
		case err == nil, errors.Is(err, store.ErrChallengeUsed):
			return nil
		case errors.Is(err, store.ErrChallengeExpired):
			return businessErr("binding: the SMS code expired", workflows.ErrTypeExpired, nil)
		default:
			return fmt.Errorf("check binding sms: %w", err)
		}
	})
	if err != nil {
		return out, a.budgetErr(ctx, err, in.AccountID, "bind_sms_code", "", "")
	}
	return out, nil
}

// budgetErr passes business errors on, turns a lock into ErrTypeLocked
// after auditing and notifying it, and leaves the rest retryable.
func (a *Activities) budgetErr(ctx context.Context, err error, accountID, purpose, actorName, remoteIP string) error {
	var le *mfa.LockedError
	if !errors.As(err, &le) {
		return err
	}
	secs := int(le.RetryAfter / time.Second)
	if err := a.lockNotice(ctx, accountID, purpose, actorName, remoteIP, "denied", a.now().Add(le.RetryAfter), le.Hard); err != nil {
		return err // a refused attempt is not counted: retrying is safe
	}
	return businessErr("binding: account locked", workflows.ErrTypeLocked, le, secs)
}

// lockNotice audits a lock of the account's failure budget (outcome
// "locked" when it starts, "denied" for an attempt refused under it) and
// tells the owner by SMS, one message ID per lock so receivers drop repeats.
func (a *Activities) lockNotice(ctx context.Context, accountID, purpose, actorName, remoteIP, outcome string, until time.Time, hard bool) error {
	details := map[string]string{"purpose": purpose}
	if hard {
		details["hard"] = "true"
	} else {
		details["locked_until"] = until.UTC().Format(time.RFC3339)
	}
	if _, err := a.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: actor(actorName), Action: AuditMFALock, Outcome: outcome, AccountID: accountID,
		Subject: accountID, RemoteIP: remoteIP, Details: details,
	}); err != nil {
		return fmt.Errorf("audit lock: %w", err)
	}
	msgID, msg := "locked-"+accountID+"-hard", "locked_hard"
	if !hard {
		msgID, msg = "locked-"+accountID+"-"+strconv.FormatInt(until.Truncate(time.Minute).Unix(), 10), "locked_until"
	}
	if acct, err := a.Store.GetAccount(ctx, accountID); err == nil && acct.BoundPhone != "" {
		tx := notify.TextFor(acct, a.issuer())
		body := tx.SMS(msg, map[string]any{"Until": tx.Time(until)})
		if err := a.Notify(ctx, notify.Message{ID: msgID, Channel: notify.SMS, To: acct.BoundPhone, Kind: KindLocked, Body: body}); err != nil {
			a.warn(ctx, "lock notice not sent", "error", err)
		}
	}
	return nil
}

// activeDevices counts the account's active devices.
func (a *Activities) activeDevices(ctx context.Context, accountID string) (int, error) {
	ds, err := a.Store.ListDevices(ctx, accountID)
	if err != nil {
		return 0, fmt.Errorf("list devices: %w", err)
	}
	n := 0
	for _, d := range ds {
		if d.Status == store.DeviceActive && d.Type.MFA() {
			n++
		}
	}
	return n, nil
}

// checkFactorRule refuses to bind while an unbind appeal of the account is
// open, and refuses a binding made without a step-up proof (the account
// had no device when it started) once the account has a device (SPEC §6a).
func (a *Activities) checkFactorRule(ctx context.Context, accountID, stepUp string) error {
	appeals, err := a.Store.ListAppeals(ctx, "", accountID, 10)
	if err != nil {
		return fmt.Errorf("list appeals: %w", err)
	}
	for _, ap := range appeals {
		if ap.ClosedAt.IsZero() {
			return businessErr("binding: an unbind appeal of the account is open", workflows.ErrTypeAppealOpen, nil)
		}
	}
	if stepUp != "" && stepUp != "none" {
		return nil
	}
	n, err := a.activeDevices(ctx, accountID)
	if err != nil {
		return err
	}
	if n > 0 {
		return businessErr("binding: the account has a device now; start again with a proof", workflows.ErrTypeStepUpRequired, nil)
	}
	return nil
}

func (a *Activities) checkDeviceLimit(ctx context.Context, accountID string) error {
	n, err := a.activeDevices(ctx, accountID)
	if err != nil {
		return err
	}
	if n >= a.maxDevices() {
		return businessErr(fmt.Sprintf("binding: the account has the maximum of %d devices", a.maxDevices()), workflows.ErrTypeTooManyDevices, nil)
	}
	return nil
}

// CreatePendingDevice creates the pending virtual device of a binding, with
// a new 160-bit secret sealed for its row, and returns its ID
// (BindDeviceID). A retry returns the same device. For a hardware binding
// it creates nothing and returns an empty ID. It fails with
// ErrTypeTooManyDevices when the account has MaxDevices active devices, or
// ErrTypeWrongState when the binding's device exists in another state.
func (a *Activities) CreatePendingDevice(ctx context.Context, in workflows.CreatePendingDeviceInput) (workflows.CreatePendingDeviceResult, error) {
	var out workflows.CreatePendingDeviceResult
	id := BindDeviceID(in.BindingID, "")
	if in.DeviceType == workflows.DeviceVirtual {
		d, err := a.Store.GetDevice(ctx, id)
		switch {
		case err == nil:
			if d.AccountID != in.AccountID || d.Type != store.Virtual || d.Status != store.DevicePending {
				return out, businessErr("binding: device in another state", workflows.ErrTypeWrongState, nil)
			}
			return workflows.CreatePendingDeviceResult{DeviceID: d.ID}, nil
		case !errors.Is(err, store.ErrNotFound):
			return out, fmt.Errorf("create pending device: %w", err)
		}
	}
	if err := a.checkDeviceLimit(ctx, in.AccountID); err != nil {
		return out, err
	}
	switch in.DeviceType {
	case workflows.DeviceHardware, workflows.DeviceWebAuthn:
		return out, nil // created when confirmed
	case workflows.DeviceVirtual:
	default:
		return out, businessErr("binding: unknown device type", workflows.ErrTypeMalformed, nil)
	}
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		return out, err
	}
	defer clear(secret)
	sealed, err := a.Keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if err != nil {
		return out, fmt.Errorf("create pending device: seal: %w", err)
	}
	p := mfa.Params{}.WithDefaults()
	_, err = a.Store.CreateDevice(ctx, store.Device{
		ID: id, AccountID: in.AccountID, Type: store.Virtual, Secret: sealed,
		Algorithm: p.Algorithm.String(), Digits: p.Digits, PeriodSeconds: int(p.Period / time.Second),
		Status: store.DevicePending,
	})
	if errors.Is(err, store.ErrConflict) {
		// A concurrent attempt made it first.
		d, gerr := a.Store.GetDevice(ctx, id)
		if gerr == nil && d.AccountID == in.AccountID && d.Status == store.DevicePending {
			return workflows.CreatePendingDeviceResult{DeviceID: id}, nil
		}
		return out, businessErr("binding: device in another state", workflows.ErrTypeWrongState, err)
	}
	if err != nil {
		return out, fmt.Errorf("create pending device: %w", err)
	}
	return workflows.CreatePendingDeviceResult{DeviceID: id}, nil
}

func deviceParams(algorithm string, digits, periodSeconds int) (mfa.Params, error) {
	alg, err := mfa.ParseAlgorithm(algorithm)
	if err != nil {
		return mfa.Params{}, err
	}
	p := mfa.Params{Algorithm: alg, Digits: digits, Period: time.Duration(periodSeconds) * time.Second}
	return p, p.Validate()
}

// ConfirmVirtual checks two consecutive codes of the binding's pending
// virtual device under the failure budget, consumes their step (so they can
// never log in), activates the device, turns the ticked scopes on, notifies
// the account and audits the binding. A device already active (a retried
// attempt) completes without checking the codes again. It fails with
// ErrTypeInvalidCode, ErrTypeNotConsecutive, ErrTypeReplayed,
// ErrTypeLocked, ErrTypeExpired (the device was revoked),
// ErrTypeTooManyDevices or ErrTypeWrongState.
func (a *Activities) ConfirmVirtual(ctx context.Context, in workflows.ConfirmVirtualInput) (workflows.ConfirmResult, error) {
	var out workflows.ConfirmResult
	d, err := a.Store.GetDevice(ctx, in.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return out, businessErr("binding: no pending device", workflows.ErrTypeWrongState, nil)
	}
	if err != nil {
		return out, fmt.Errorf("confirm virtual: %w", err)
	}
	if d.AccountID != in.AccountID || d.Type != store.Virtual {
		return out, businessErr("binding: no pending device", workflows.ErrTypeWrongState, nil)
	}
	switch d.Status {
	case store.DeviceActive:
		return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP)
	case store.DeviceRevoked:
		return out, businessErr("binding: expired", workflows.ErrTypeExpired, nil)
	}
	if err := a.checkFactorRule(ctx, in.AccountID, in.StepUp); err != nil {
		return out, err
	}
	if err := a.checkDeviceLimit(ctx, in.AccountID); err != nil {
		return out, err
	}
	p, err := deviceParams(d.Algorithm, d.Digits, d.PeriodSeconds)
	if err != nil {
		return out, businessErr("binding: device parameters", workflows.ErrTypeWrongState, err)
	}
	secret, err := inventory.OpenSecret(ctx, a.Store, a.Keys, store.SealedDevices, d.ID, d.Secret)
	if err != nil {
		return out, fmt.Errorf("confirm virtual: open secret: %w", err)
	}
	defer clear(secret)
	var step int64
	err = a.verifier("bind_device", in.Actor, in.RemoteIP).Attempt(ctx, in.AccountID, func() error {
		opts := mfa.VerifyOpts{Params: p, Now: a.now()}
		s, err := mfa.VerifyConsecutive(secret, in.Code1, in.Code2, opts)
		if err == nil {
			step = s
			return nil
		}
		if !errors.Is(err, mfa.ErrInvalidCode) {
			return fmt.Errorf("confirm virtual: %w", err)
		}
		_, err1 := mfa.Verify(secret, in.Code1, opts)
		_, err2 := mfa.Verify(secret, in.Code2, opts)
		if err1 == nil && err2 == nil {
			return businessErr("binding: the two codes are not consecutive", workflows.ErrTypeNotConsecutive, nil)
		}
		return businessErr("binding: wrong code", workflows.ErrTypeInvalidCode, nil)
	})
	if err != nil {
		return out, a.budgetErr(ctx, err, in.AccountID, "bind_device", in.Actor, in.RemoteIP)
	}
	if err := a.consumeStep(ctx, d.ID, step); err != nil {
		return out, err
	}
	if d, err = a.activate(ctx, d.ID); err != nil {
		return out, err
	}
	return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP)
}

// consumeStep records step as the device's last used step. An earlier
// attempt of this binding that recorded the same step is not a replay.
func (a *Activities) consumeStep(ctx context.Context, deviceID string, step int64) error {
	ok, err := a.Store.AdvanceStep(ctx, deviceID, step)
	if err != nil {
		return fmt.Errorf("advance step: %w", err)
	}
	if ok {
		return nil
	}
	d, err := a.Store.GetDevice(ctx, deviceID)
	if err != nil {
		return fmt.Errorf("advance step: %w", err)
	}
	if d.LastStep == step {
		return nil
	}
	return businessErr("binding: code already used", workflows.ErrTypeReplayed, nil)
}

// activate moves the device to active; already active is fine.
func (a *Activities) activate(ctx context.Context, id string) (store.Device, error) {
	d, err := a.Store.ActivateDevice(ctx, id, a.now())
	if errors.Is(err, store.ErrConflict) {
		d, err = a.Store.GetDevice(ctx, id)
		if err == nil && d.Status != store.DeviceActive {
			return d, businessErr("binding: expired", workflows.ErrTypeExpired, nil)
		}
	}
	if err != nil {
		return d, fmt.Errorf("activate device: %w", err)
	}
	return d, nil
}

func scopes(p workflows.Protection) string {
	var s []string
	if p.Login {
		s = append(s, "login")
	}
	if p.Operation {
		s = append(s, "operation")
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// finishBind turns the ticked scopes on, notifies the account and audits
// the binding of the active device d. The audit entry comes last and marks
// the binding done: a retry after it changes nothing.
func (a *Activities) finishBind(ctx context.Context, d store.Device, p workflows.Protection, actorName, remoteIP string) (workflows.ConfirmResult, error) {
	out := workflows.ConfirmResult{DeviceID: d.ID, ProtectionUnchanged: !p.Login && !p.Operation}
	entries, err := a.Store.ListAudit(ctx, store.AuditFilter{AccountID: d.AccountID, Subject: d.ID, Limit: 1000})
	if err != nil {
		return out, fmt.Errorf("finish bind: %w", err)
	}
	done := false
	for _, e := range entries {
		if e.Action == AuditDeviceBind && e.Outcome == "ok" {
			done = true
		}
	}
	cur, err := a.Store.GetProtection(ctx, d.AccountID)
	if err != nil {
		return out, fmt.Errorf("finish bind: %w", err)
	}
	if !done && !out.ProtectionUnchanged && (p.Login && !cur.Login || p.Operation && !cur.Operation) {
		// Scopes only turn on here; turning one off takes a code (PUT protection).
		cur, err = a.Store.SetProtection(ctx, d.AccountID, store.Protection{Login: cur.Login || p.Login, Operation: cur.Operation || p.Operation})
		if err != nil {
			return out, fmt.Errorf("finish bind: %w", err)
		}
	}
	out.Protection = workflows.Protection{Login: cur.Login, Operation: cur.Operation}
	if done {
		return out, nil
	}
	acct, err := a.Store.GetAccount(ctx, d.AccountID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return out, fmt.Errorf("finish bind: %w", err)
	}
	tx := notify.TextFor(acct, a.issuer())
	vars := map[string]any{"Device": tx.Device(d.Type, d.Serial, d.Name), "Kind": tx.Kind(d.Type), "Time": tx.Time(d.BoundAt),
		"Scopes": tx.Scopes(out.Protection.Login, out.Protection.Operation)}
	data := map[string]string{"device_id": d.ID, "device_type": string(d.Type)}
	for _, m := range []notify.Message{
		{ID: "device-bound-" + d.ID + "-sms", Channel: notify.SMS, To: acct.BoundPhone, Kind: KindDeviceBound, Body: tx.SMS("device_bound", vars), Data: data},
		{ID: "device-bound-" + d.ID + "-email", Channel: notify.Email, To: acct.Email, Kind: KindDeviceBound, Body: tx.Email("device_bound", vars), Data: data},
	} {
		if m.To == "" {
			continue
		}
		if err := a.Notify(ctx, m); err != nil {
			if !errors.Is(err, notify.ErrRejected) {
				return out, err
			}
			// A receiver refusing the notice for good must not strand a bound device.
			a.warn(ctx, "device-bound notice refused", "channel", m.Channel, "device_id", d.ID)
		}
	}
	details := map[string]string{"type": string(d.Type), "device_id": d.ID, "scopes": scopes(p)}
	if d.Serial != "" {
		details["serial"] = d.Serial
	}
	if out.ProtectionUnchanged {
		details["protection"] = "unchanged"
	}
	if _, err := a.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: actor(actorName), Action: AuditDeviceBind, Outcome: "ok", AccountID: d.AccountID,
		Subject: d.ID, RemoteIP: remoteIP, Details: details,
	}); err != nil {
		return out, fmt.Errorf("finish bind: audit: %w", err)
	}
	return out, nil
}

// ConfirmHardware binds the inventory card serial to the account: it
// checks the card's current code under the failure budget, creates the
// device (BindDeviceID(binding, serial)) with the seed re-sealed for its
// row, assigns the card to it (compare-and-set), consumes the code's step,
// activates it, turns the ticked scopes on, notifies and audits. A card
// already bound to this binding's device (a retried attempt) completes
// without checking the code again. It fails with ErrTypeSerialUnknown,
// ErrTypeSerialUnavailable (bound elsewhere, revoked, or lost to a
// concurrent binding, which leaves no device behind), ErrTypeInvalidCode,
// ErrTypeLocked, ErrTypeTooManyDevices or ErrTypeReplayed.
func (a *Activities) ConfirmHardware(ctx context.Context, in workflows.ConfirmHardwareInput) (workflows.ConfirmResult, error) {
	var out workflows.ConfirmResult
	id := BindDeviceID(in.BindingID, in.Serial)
	unavailable := businessErr("binding: the card is bound elsewhere or revoked", workflows.ErrTypeSerialUnavailable, nil)
	t, err := a.Store.GetToken(ctx, in.Serial)
	if errors.Is(err, store.ErrNotFound) {
		return out, businessErr("binding: no such card", workflows.ErrTypeSerialUnknown, nil)
	}
	if err != nil {
		return out, fmt.Errorf("confirm hardware: %w", err)
	}
	switch t.State {
	case store.TokenRevoked:
		return out, unavailable
	case store.TokenBound:
		if t.AccountID != in.AccountID || t.DeviceID != id {
			return out, unavailable
		}
		// A retried attempt: the code was checked and its step consumed
		// before the card was assigned.
		d, err := a.activate(ctx, id)
		if err != nil {
			return out, err
		}
		return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP)
	}
	if err := a.checkFactorRule(ctx, in.AccountID, in.StepUp); err != nil {
		return out, err
	}
	if err := a.checkDeviceLimit(ctx, in.AccountID); err != nil {
		return out, err
	}
	p, err := deviceParams(t.Algorithm, t.Digits, t.PeriodSeconds)
	if err != nil {
		return out, businessErr("binding: card parameters", workflows.ErrTypeSerialUnavailable, err)
	}
	seed, err := inventory.OpenSecret(ctx, a.Store, a.Keys, store.SealedTokens, t.Serial, t.Seed)
	if err != nil {
		return out, fmt.Errorf("confirm hardware: open seed: %w", err)
	}
	defer clear(seed)
	var step int64
	err = a.verifier("bind_device", in.Actor, in.RemoteIP).Attempt(ctx, in.AccountID, func() error {
		s, err := mfa.Verify(seed, in.Code, mfa.VerifyOpts{Params: p, Now: a.now()})
		switch {
		case err == nil:
			step = s
			return nil
		case errors.Is(err, mfa.ErrInvalidCode):
			return businessErr("binding: wrong code", workflows.ErrTypeInvalidCode, nil)
		default:
			return fmt.Errorf("confirm hardware: %w", err)
		}
	})
	if err != nil {
		return out, a.budgetErr(ctx, err, in.AccountID, "bind_device", in.Actor, in.RemoteIP)
	}

	d, err := a.Store.GetDevice(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		sealed, err := a.Keys.Seal(seed, mfa.AAD(string(store.SealedDevices), id))
		if err != nil {
			return out, fmt.Errorf("confirm hardware: seal: %w", err)
		}
		d, err = a.Store.CreateDevice(ctx, store.Device{
			ID: id, AccountID: in.AccountID, Type: store.Hardware, Serial: t.Serial, Secret: sealed,
			Algorithm: t.Algorithm, Digits: t.Digits, PeriodSeconds: t.PeriodSeconds, Status: store.DevicePending,
		})
		if errors.Is(err, store.ErrConflict) {
			// The card is on another live device: a concurrent binding won.
			return out, unavailable
		}
		if err != nil {
			return out, fmt.Errorf("confirm hardware: %w", err)
		}
	case err != nil:
		return out, fmt.Errorf("confirm hardware: %w", err)
	case d.AccountID != in.AccountID || d.Serial != in.Serial || d.Status == store.DeviceRevoked:
		return out, unavailable
	}
	if err := a.consumeStep(ctx, id, step); err != nil {
		return out, err
	}
	err = a.Store.AssignToken(ctx, t.Serial, in.AccountID, id, a.now())
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		// Lost the card: leave no device behind.
		if _, rerr := a.Store.RevokeDevice(ctx, id, a.now()); rerr != nil {
			return out, fmt.Errorf("confirm hardware: revoke lost device: %w", rerr)
		}
		a.warn(ctx, "card lost to a concurrent binding", "device_id", id)
		return out, unavailable
	}
	if err != nil {
		return out, fmt.Errorf("confirm hardware: %w", err)
	}
	if d, err = a.activate(ctx, id); err != nil {
		return out, err
	}
	return a.finishBind(ctx, d, in.Protection, in.Actor, in.RemoteIP)
}

// ExpireBinding leaves nothing of an unfinished binding: it releases any
// card assigned to one of the binding's devices that is not active and
// revokes those still pending, then audits the binding with in.Outcome
// (default BindingExpired). Active devices are left alone. It is
// idempotent: the audit entry is written once.
func (a *Activities) ExpireBinding(ctx context.Context, in workflows.ExpireBindingInput) error {
	outcome := in.Outcome
	if outcome == "" {
		outcome = workflows.BindingExpired
	}
	ds, err := a.Store.ListDevices(ctx, in.AccountID)
	if err != nil {
		return fmt.Errorf("expire binding: %w", err)
	}
	prefix := BindDeviceID(in.BindingID, "")
	revoked := 0
	for _, d := range ds {
		ours := d.ID == prefix || strings.HasPrefix(d.ID, prefix+"-") || (in.DeviceID != "" && d.ID == in.DeviceID)
		if !ours || d.Status == store.DeviceActive {
			continue
		}
		if d.Serial != "" {
			if _, err := a.Store.ReleaseToken(ctx, d.Serial, d.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("expire binding: release card: %w", err)
			}
		}
		if d.Status == store.DevicePending {
			if _, err := a.Store.RevokeDevice(ctx, d.ID, a.now()); err != nil {
				return fmt.Errorf("expire binding: revoke: %w", err)
			}
			revoked++
		}
	}
	entries, err := a.Store.ListAudit(ctx, store.AuditFilter{AccountID: in.AccountID, Subject: in.BindingID, Limit: 1000})
	if err != nil {
		return fmt.Errorf("expire binding: %w", err)
	}
	for _, e := range entries {
		if e.Action == AuditDeviceBind && e.Outcome == outcome {
			return nil
		}
	}
	if _, err := a.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: "system", Action: AuditDeviceBind, Outcome: outcome, AccountID: in.AccountID,
		Subject: in.BindingID, RemoteIP: in.RemoteIP,
		Details: map[string]string{"binding_id": in.BindingID, "revoked_devices": strconv.Itoa(revoked)},
	}); err != nil {
		return fmt.Errorf("expire binding: audit: %w", err)
	}
	return nil
}

// checkSMSCode reports whether code is the challenge's code, hashed with
// the key derived for SMSKeyLabel from any key of the ring: the row does not
// record its key id, and a challenge lives only minutes, so each key (a
// ring holds few) is tried rather than the current one alone.
func checkSMSCode(keys *mfa.Keyring, challengeID, code string, hash []byte) bool {
	ok := false
	for _, id := range keys.IDs() {
		key, _ := keys.DeriveKeyFor(id, SMSKeyLabel)
		ok = mfa.CheckSMSCode(key, challengeID, code, hash) || ok
	}
	return ok
}

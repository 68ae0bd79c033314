package workflows

import (
	"errors"
	"regexp"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activities of BindDevice, by name: the methods of activities.Activities
// that implement them (the activities package implements this contract,
// so the workflow names them instead of importing it).
const (
	ActivitySendBindingSMS      = "SendBindingSMS"
	ActivityCheckBindingSMS     = "CheckBindingSMS"
	ActivityCreatePendingDevice = "CreatePendingDevice"
	ActivityConfirmVirtual      = "ConfirmVirtual"
	ActivityConfirmHardware     = "ConfirmHardware"
	ActivityExpireBinding       = "ExpireBinding"
	ActivityBeginWebAuthn       = "BeginWebAuthnRegistration"
	ActivityConfirmWebAuthn     = "ConfirmWebAuthn"
)

// BeginWebAuthnInput is the argument of BeginWebAuthnRegistration.
type BeginWebAuthnInput struct {
	AccountID string
	BindingID string
}

// BeginWebAuthnResult is the registration's options and session. The
// session holds the single-use challenge; it stays in the workflow
// (encrypted by the payload codec) and expires with the binding.
type BeginWebAuthnResult struct {
	CreationOptions string // JSON for navigator.credentials.create
	Session         []byte
	UserHandle      []byte
}

// ConfirmWebAuthnInput is the argument of ConfirmWebAuthn.
type ConfirmWebAuthnInput struct {
	AccountID  string
	BindingID  string
	Session    []byte
	UserHandle []byte
	Credential string // the browser's PublicKeyCredential JSON
	Name       string
	Protection Protection
	Actor      string
	RemoteIP   string
	StepUp     string
}

// SendBindingSMSInput is the argument of SendBindingSMS.
type SendBindingSMSInput struct {
	AccountID string
	BindingID string
}

// SendBindingSMSResult names the SMS challenge sent; never its code.
type SendBindingSMSResult struct {
	ChallengeID string
	ExpiresAt   time.Time
}

// CheckBindingSMSInput is the argument of CheckBindingSMS.
type CheckBindingSMSInput struct {
	AccountID   string
	ChallengeID string
	Code        string
}

// CheckBindingSMSResult is the result of a correct SMS code.
type CheckBindingSMSResult struct {
	TriesLeft int
}

// CreatePendingDeviceInput is the argument of CreatePendingDevice.
type CreatePendingDeviceInput struct {
	AccountID  string
	BindingID  string
	DeviceType string
}

// CreatePendingDeviceResult names the pending device; empty for hardware,
// whose device is created when the card is confirmed.
type CreatePendingDeviceResult struct {
	DeviceID string
}

// ConfirmVirtualInput is the argument of ConfirmVirtual.
type ConfirmVirtualInput struct {
	AccountID  string
	BindingID  string
	DeviceID   string
	Code1      string
	Code2      string
	Protection Protection
	Actor      string // for the audit log
	RemoteIP   string
	StepUp     string // BindDeviceInput.StepUp
}

// ConfirmHardwareInput is the argument of ConfirmHardware.
type ConfirmHardwareInput struct {
	AccountID  string
	BindingID  string
	Serial     string
	Code       string
	Protection Protection
	Actor      string
	RemoteIP   string
	StepUp     string // BindDeviceInput.StepUp
}

// ConfirmResult is the result of ConfirmVirtual and ConfirmHardware.
type ConfirmResult struct {
	DeviceID string
	// Protection is the account's protection after the binding: the scopes
	// ticked are turned on, the others left as they were.
	Protection Protection
	// ProtectionUnchanged is true when no scope was ticked: the device is
	// bound and the account's protection left as it was.
	ProtectionUnchanged bool
}

// ExpireBindingInput is the argument of ExpireBinding.
type ExpireBindingInput struct {
	AccountID string
	BindingID string
	DeviceID  string // the pending device, if any
	Outcome   string // audit outcome: BindingExpired, BindingFailed or BindingCancelled
	Actor     string
	RemoteIP  string
}

var (
	sixDigits  = regexp.MustCompile(`^[0-9]{6}$`)
	cardCode   = regexp.MustCompile(`^(?:[0-9]{6}|[0-9]{8})$`)
	cardSerial = regexp.MustCompile(`^[A-Za-z0-9-]{4,32}$`)
)

// businessErrTypes are the activity error types passed on to the console as
// they are; any other failure becomes ErrTypeUnavailable.
var businessErrTypes = []string{
	ErrTypeInvalidCode, ErrTypeLocked, ErrTypeReplayed, ErrTypeNotConsecutive,
	ErrTypeSerialUnknown, ErrTypeSerialUnavailable, ErrTypeTooManyDevices, ErrTypeWrongState,
	ErrTypeExpired, ErrTypeSMSExhausted, ErrTypeNoPhone, ErrTypeNoAccount, ErrTypeMalformed,
	ErrTypeStepUpRequired, ErrTypeAppealOpen, ErrTypeCredentialRefused,
}

// BindDevice binds an MFA device to an account (SPEC §1, §6). It is driven
// by updates: UpdateBegin (sent with the start) sends the SMS code,
// UpdateSMSCode checks it and creates the pending device, UpdateConfirm
// checks the device codes and binds it. Handlers run one at a time. After
// BindingTTL from the start the binding expires and ExpireBinding removes
// whatever was half made. It returns the final state: bound, expired or
// failed; business failures are answers to updates, never workflow errors.
func BindDevice(ctx workflow.Context, in BindDeviceInput) (BindingState, error) {
	ao := workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: time.Minute, // an update waits at most this long
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			NonRetryableErrorTypes: businessErrTypes,
		},
	}
	// Update handlers run with their own context: each applies ao too.
	withOptions := func(ctx workflow.Context) workflow.Context { return workflow.WithActivityOptions(ctx, ao) }
	ctx = withOptions(ctx)

	logger := workflow.GetLogger(ctx)
	st := BindingState{
		BindingID:    in.BindingID,
		AccountID:    in.AccountID,
		DeviceType:   in.DeviceType,
		Status:       BindingAwaitingSMSCode,
		ExpiresAt:    workflow.Now(ctx).Add(BindingTTL),
		SMSTriesLeft: 5,
	}
	var (
		challengeID      string
		challengeExpires time.Time
		smsPassed        bool
		webauthnReg      BeginWebAuthnResult // the registration session, single use
		mu               = workflow.NewMutex(ctx)
	)

	setStatus := func(s string) {
		st.Status = s
		logger.Info("binding status", "binding_id", in.BindingID, "status", s)
	}
	cleanup := func(ctx workflow.Context, outcome string) {
		// Cleanup keeps trying much longer: nothing may stay half-bound.
		cctx := workflow.WithScheduleToCloseTimeout(withOptions(ctx), 24*time.Hour)
		err := workflow.ExecuteActivity(cctx, ActivityExpireBinding, ExpireBindingInput{
			AccountID: in.AccountID, BindingID: in.BindingID, DeviceID: st.DeviceID,
			Outcome: outcome, Actor: in.RequestedBy, RemoteIP: in.RemoteIP,
		}).Get(ctx, nil)
		if err != nil {
			logger.Error("binding cleanup failed", "binding_id", in.BindingID, "error", err)
		}
	}
	fail := func(ctx workflow.Context) {
		setStatus(BindingFailed)
		cleanup(ctx, BindingFailed)
	}
	// answer turns an activity failure into the update's answer.
	answer := func(err error) error {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && isBusinessType(appErr.Type()) {
			var n int
			if appErr.HasDetails() && appErr.Details(&n) == nil {
				return temporal.NewApplicationError(appErr.Message(), appErr.Type(), n)
			}
			return temporal.NewApplicationError(appErr.Message(), appErr.Type())
		}
		logger.Warn("binding activity failed", "binding_id", in.BindingID, "error", err)
		return temporal.NewApplicationError("binding: temporarily unavailable, try again", ErrTypeUnavailable)
	}
	stateErr := func(want ...string) error {
		switch st.Status {
		case BindingExpired:
			return temporal.NewApplicationError("binding: expired", ErrTypeExpired)
		}
		for _, w := range want {
			if st.Status == w {
				return nil
			}
		}
		return temporal.NewApplicationError("binding: not expected now (status "+st.Status+")", ErrTypeWrongState)
	}

	if err := workflow.SetQueryHandler(ctx, QueryBindingStatus, func() (BindingState, error) {
		return st, nil
	}); err != nil {
		return st, err
	}

	// UpdateBegin sends the SMS code. Sent again to a running binding, it
	// answers the state and re-sends the code only when the last one expired.
	beginHandler := func(ctx workflow.Context) (BindingState, error) {
		ctx = withOptions(ctx)
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if st.Status != BindingAwaitingSMSCode {
			return st, nil
		}
		if challengeID != "" && workflow.Now(ctx).Before(challengeExpires) {
			return st, nil
		}
		var out SendBindingSMSResult
		err := workflow.ExecuteActivity(ctx, ActivitySendBindingSMS, SendBindingSMSInput{AccountID: in.AccountID, BindingID: in.BindingID}).Get(ctx, &out)
		if err != nil {
			err = answer(err)
			if isType(err, ErrTypeNoAccount, ErrTypeNoPhone) {
				fail(ctx)
			}
			return st, err
		}
		challengeID, challengeExpires = out.ChallengeID, out.ExpiresAt
		st.SMSTriesLeft = 5
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateBegin, beginHandler, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context) error {
			if terminal(st.Status) {
				return stateErr()
			}
			return nil
		},
	}); err != nil {
		return st, err
	}

	smsHandler := func(ctx workflow.Context, u BindSMSCodeInput) (BindingState, error) {
		ctx = withOptions(ctx)
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if err := stateErr(BindingAwaitingSMSCode); err != nil || challengeID == "" {
			if err == nil {
				err = stateErr()
			}
			return st, err
		}
		if !smsPassed {
			var out CheckBindingSMSResult
			err := workflow.ExecuteActivity(ctx, ActivityCheckBindingSMS, CheckBindingSMSInput{
				AccountID: in.AccountID, ChallengeID: challengeID, Code: u.Code,
			}).Get(ctx, &out)
			if err != nil {
				err = answer(err)
				var appErr *temporal.ApplicationError
				switch {
				case isType(err, ErrTypeInvalidCode):
					if errors.As(err, &appErr) && appErr.HasDetails() {
						_ = appErr.Details(&st.SMSTriesLeft)
					}
				case isType(err, ErrTypeSMSExhausted, ErrTypeLocked):
					st.SMSTriesLeft = 0
					fail(ctx)
				case isType(err, ErrTypeExpired):
					challengeExpires = time.Time{} // UpdateBegin may send a new code
				}
				return st, err
			}
			st.SMSTriesLeft = out.TriesLeft
			smsPassed = true
		}
		// The SMS code is used up: if creating the device fails for a
		// while, the next UpdateSMSCode goes straight here.
		var dev CreatePendingDeviceResult
		err := workflow.ExecuteActivity(ctx, ActivityCreatePendingDevice, CreatePendingDeviceInput{
			AccountID: in.AccountID, BindingID: in.BindingID, DeviceType: in.DeviceType,
		}).Get(ctx, &dev)
		if err != nil {
			err = answer(err)
			if isType(err, ErrTypeTooManyDevices, ErrTypeWrongState) {
				fail(ctx)
			}
			return st, err
		}
		st.DeviceID = dev.DeviceID
		switch in.DeviceType {
		case DeviceHardware:
			setStatus(BindingAwaitingHardwareToken)
		case DeviceWebAuthn:
			var reg BeginWebAuthnResult
			err := workflow.ExecuteActivity(ctx, ActivityBeginWebAuthn, BeginWebAuthnInput{AccountID: in.AccountID, BindingID: in.BindingID}).Get(ctx, &reg)
			if err != nil {
				err = answer(err)
				if isType(err, ErrTypeMalformed) {
					fail(ctx)
				}
				return st, err
			}
			webauthnReg = reg
			st.CreationOptions = reg.CreationOptions
			setStatus(BindingAwaitingWebAuthn)
		default:
			setStatus(BindingAwaitingDeviceCodes)
		}
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSMSCode, smsHandler, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, u BindSMSCodeInput) error {
			if u.BindingID != in.BindingID {
				return otherBinding()
			}
			if err := stateErr(BindingAwaitingSMSCode); err != nil {
				return err
			}
			if challengeID == "" {
				return stateErr()
			}
			if !sixDigits.MatchString(u.Code) {
				return temporal.NewApplicationError("binding: the SMS code must be 6 digits", ErrTypeMalformed)
			}
			return nil
		},
	}); err != nil {
		return st, err
	}

	confirmHandler := func(ctx workflow.Context, u BindConfirmInput) (BindingState, error) {
		ctx = withOptions(ctx)
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		var (
			out ConfirmResult
			err error
		)
		if in.DeviceType == DeviceWebAuthn {
			if err := stateErr(BindingAwaitingWebAuthn); err != nil {
				return st, err
			}
			err = workflow.ExecuteActivity(ctx, ActivityConfirmWebAuthn, ConfirmWebAuthnInput{
				AccountID: in.AccountID, BindingID: in.BindingID, Session: webauthnReg.Session, UserHandle: webauthnReg.UserHandle,
				Credential: u.Credential, Name: u.Name, Protection: u.Protection, Actor: in.RequestedBy, RemoteIP: in.RemoteIP, StepUp: in.StepUp,
			}).Get(ctx, &out)
		} else if in.DeviceType == DeviceHardware {
			if err := stateErr(BindingAwaitingHardwareToken); err != nil {
				return st, err
			}
			err = workflow.ExecuteActivity(ctx, ActivityConfirmHardware, ConfirmHardwareInput{
				AccountID: in.AccountID, BindingID: in.BindingID, Serial: u.Serial, Code: u.Code,
				Protection: u.Protection, Actor: in.RequestedBy, RemoteIP: in.RemoteIP, StepUp: in.StepUp,
			}).Get(ctx, &out)
		} else {
			if err := stateErr(BindingAwaitingDeviceCodes); err != nil {
				return st, err
			}
			err = workflow.ExecuteActivity(ctx, ActivityConfirmVirtual, ConfirmVirtualInput{
				AccountID: in.AccountID, BindingID: in.BindingID, DeviceID: st.DeviceID, Code1: u.Code1, Code2: u.Code2,
				Protection: u.Protection, Actor: in.RequestedBy, RemoteIP: in.RemoteIP, StepUp: in.StepUp,
			}).Get(ctx, &out)
		}
		if err != nil {
			err = answer(err)
			// Wrong codes, a lock or an unavailable card leave the binding
			// waiting for another try; the failure budget limits them.
			// A refused key answer used the registration's challenge up.
			if isType(err, ErrTypeTooManyDevices, ErrTypeWrongState, ErrTypeStepUpRequired, ErrTypeAppealOpen, ErrTypeCredentialRefused) {
				fail(ctx)
			}
			return st, err
		}
		st.DeviceID = out.DeviceID
		st.CreationOptions = ""
		st.Protection = out.Protection
		st.ProtectionUnchanged = out.ProtectionUnchanged
		setStatus(BindingBound)
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateConfirm, confirmHandler, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, u BindConfirmInput) error {
			if u.BindingID != in.BindingID {
				return otherBinding()
			}
			if in.DeviceType == DeviceWebAuthn {
				if err := stateErr(BindingAwaitingWebAuthn); err != nil {
					return err
				}
				if u.Credential == "" || len(u.Credential) > 64<<10 {
					return temporal.NewApplicationError("binding: the key's credential (at most 64 KiB of JSON) is required", ErrTypeMalformed)
				}
				if len(u.Name) > 64 {
					return temporal.NewApplicationError("binding: the key's name is at most 64 characters", ErrTypeMalformed)
				}
				return nil
			}
			if in.DeviceType == DeviceHardware {
				if err := stateErr(BindingAwaitingHardwareToken); err != nil {
					return err
				}
				if !cardSerial.MatchString(u.Serial) {
					return temporal.NewApplicationError("binding: the serial must be 4-32 characters of A-Z a-z 0-9 -", ErrTypeMalformed)
				}
				if !cardCode.MatchString(u.Code) {
					return temporal.NewApplicationError("binding: the card code must be 6 or 8 digits", ErrTypeMalformed)
				}
				return nil
			}
			if err := stateErr(BindingAwaitingDeviceCodes); err != nil {
				return err
			}
			if !sixDigits.MatchString(u.Code1) || !sixDigits.MatchString(u.Code2) {
				return temporal.NewApplicationError("binding: both app codes must be 6 digits", ErrTypeMalformed)
			}
			return nil
		},
	}); err != nil {
		return st, err
	}

	// UpdateCancelBinding ends a pending binding at the console's request. It adds
	// no command to histories that never receive it, so no version guard.
	cancelHandler := func(ctx workflow.Context, u BindCancelInput) (BindingState, error) {
		ctx = withOptions(ctx)
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		switch {
		case st.Status == BindingBound:
			return st, temporal.NewApplicationError("binding: already bound", ErrTypeWrongState)
		case terminal(st.Status):
			return st, nil // cancelled, expired or failed: nothing is pending
		}
		setStatus(BindingCancelled)
		cleanup(ctx, BindingCancelled)
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancelBinding, cancelHandler, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, u BindCancelInput) error {
			if u.BindingID != in.BindingID {
				return otherBinding()
			}
			return nil
		},
	}); err != nil {
		return st, err
	}

	done, err := workflow.AwaitWithTimeout(ctx, BindingTTL, func() bool { return terminal(st.Status) })
	if err != nil {
		return st, err
	}
	if !done {
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		if !terminal(st.Status) {
			setStatus(BindingExpired)
			cleanup(ctx, BindingExpired)
		}
		mu.Unlock()
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return st, err
	}
	return st, nil
}

// otherBinding refuses an update meant for another binding of the account.
func otherBinding() error {
	return temporal.NewApplicationError("binding: not the binding in progress", ErrTypeWrongState)
}

func terminal(status string) bool {
	return status == BindingBound || status == BindingExpired || status == BindingFailed || status == BindingCancelled
}

func isBusinessType(t string) bool {
	for _, b := range businessErrTypes {
		if t == b {
			return true
		}
	}
	return false
}

// isType reports whether err is an application error of one of types.
func isType(err error, types ...string) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return false
	}
	for _, t := range types {
		if appErr.Type() == t {
			return true
		}
	}
	return false
}

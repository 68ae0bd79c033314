package workflows

import "time"

// BindDevice's names and messages: the contract between the console API
// (which drives the workflow with Update-with-Start and Updates) and the
// workflow. The workflow ID is BindWorkflowID(account): one active binding
// per account.
const (
	// UpdateBegin is the update sent with the start: it sends the SMS code.
	// It takes no argument. Sent again to a running binding it answers the
	// state, re-sending the SMS code only when the last one expired.
	UpdateBegin = "begin"
	// UpdateSMSCode submits the SMS code (BindSMSCodeInput).
	UpdateSMSCode = "sms_code"
	// UpdateConfirm submits the device codes and scopes (BindConfirmInput).
	UpdateConfirm = "confirm"
	// UpdateCancelBinding cancels a pending binding (BindCancelInput): whatever was
	// half made is removed as on expiry, and the binding ends cancelled. A
	// binding that already ended answers its state; a bound one refuses
	// with ErrTypeWrongState.
	UpdateCancelBinding = "cancel"
	// QueryBindingStatus returns a BindingState.
	QueryBindingStatus = "status"
	// BindingTTL is how long a binding may take before it expires and
	// leaves nothing half-bound.
	BindingTTL = 15 * time.Minute
)

// BindWorkflowID is the workflow ID of an account's binding.
func BindWorkflowID(accountID string) string { return "bind-" + accountID }

// Binding statuses.
const (
	BindingAwaitingSMSCode       = "awaiting_sms_code"
	BindingAwaitingDeviceCodes   = "awaiting_device_codes"
	BindingAwaitingHardwareToken = "awaiting_hardware_token"
	BindingAwaitingWebAuthn      = "awaiting_webauthn"
	BindingBound                 = "bound"
	BindingExpired               = "expired"
	BindingFailed                = "failed"    // too many wrong SMS codes, or the account locked
	BindingCancelled             = "cancelled" // cancelled by the console before it was bound
)

// Device types a binding can create.
const (
	DeviceVirtual  = "virtual"
	DeviceHardware = "hardware"
	DeviceWebAuthn = "webauthn" // a security key or passkey (SPEC §6c)
)

// Application error types the binding's updates fail with. The API maps
// each to a status and error code; none carries a code or a secret.
const (
	ErrTypeInvalidCode       = "InvalidCode"       // wrong SMS or device code; details: tries left (SMS)
	ErrTypeMalformed         = "Malformed"         // refused by an update validator
	ErrTypeLocked            = "Locked"            // the account's failure budget is locked; details: retry-after seconds
	ErrTypeReplayed          = "Replayed"          // a device code already used
	ErrTypeNotConsecutive    = "NotConsecutive"    // the two app codes are not consecutive
	ErrTypeSerialUnknown     = "SerialUnknown"     // no such card in the inventory
	ErrTypeSerialUnavailable = "SerialUnavailable" // the card is bound elsewhere or revoked
	ErrTypeTooManyDevices    = "TooManyDevices"    // the account has the maximum of active devices
	ErrTypeWrongState        = "WrongState"        // the update does not fit the binding's state
	ErrTypeExpired           = "Expired"           // the binding expired
	ErrTypeSMSExhausted      = "SMSExhausted"      // 5 wrong SMS codes: the binding failed
	ErrTypeNoPhone           = "NoPhone"           // the account has no bound phone
	ErrTypeNoAccount         = "NoAccount"         // the account is not in the directory
	ErrTypeUnavailable       = "Unavailable"       // the store or notifier did not answer in time; try again
	ErrTypeStepUpRequired    = "StepUpRequired"    // the account has a device now, and the binding started without a proof
	ErrTypeAppealOpen        = "AppealOpen"        // an unbind appeal of the account is open: its factor set cannot change
	ErrTypeCredentialRefused = "CredentialRefused" // the security key's registration response did not verify
)

// BindDeviceInput starts a binding.
type BindDeviceInput struct {
	AccountID   string
	DeviceType  string // DeviceVirtual or DeviceHardware
	BindingID   string // the workflow run's public id, returned to the console
	RequestedBy string // for the audit log, e.g. "console"
	RemoteIP    string
	// StepUp is how the console authorised the binding (SPEC §6a): "none"
	// (or empty, for bindings started before the rule) for an account
	// without an active device, "code" or "recovery_code" otherwise. A
	// binding without a proof is refused at confirm when the account has
	// gained a device meanwhile. It never holds the proof itself.
	StepUp string
	// StepUpDevice is the device whose code was the proof, if any.
	StepUpDevice string
}

// BindingState is the binding as the console sees it.
type BindingState struct {
	BindingID  string
	AccountID  string
	DeviceType string
	Status     string
	ExpiresAt  time.Time
	// DeviceID is the pending (then active) device. For a virtual device the
	// API reads its sealed secret from the store to show the key and QR once;
	// the secret itself never enters the workflow.
	DeviceID string
	// SMSTriesLeft counts down from 5.
	SMSTriesLeft int
	// Protection is the account's protection once bound: the scopes ticked
	// are turned on, the others left as they were.
	Protection Protection
	// ProtectionUnchanged is true once bound when no scope was ticked: the
	// device is bound and the account's protection left as it was.
	ProtectionUnchanged bool
	// CreationOptions is, while a WebAuthn binding waits for the key, the
	// JSON for navigator.credentials.create ({"publicKey":{…}}).
	CreationOptions string `json:",omitempty"`
}

// BindSMSCodeInput is the argument of UpdateSMSCode.
type BindSMSCodeInput struct {
	BindingID string // must be the running binding's; the validator refuses another
	Code      string // 6 digits
}

// BindCancelInput is the argument of UpdateCancelBinding.
type BindCancelInput struct {
	BindingID string // must be the running binding's; the validator refuses another
}

// Protection is the scope a binding turns on.
type Protection struct {
	Login     bool
	Operation bool
}

// BindConfirmInput is the argument of UpdateConfirm: Code1 and Code2 for a
// virtual device, Serial and Code for a hardware card.
type BindConfirmInput struct {
	BindingID  string // must be the running binding's; the validator refuses another
	Code1      string
	Code2      string
	Serial     string
	Code       string
	Protection Protection
	// Credential is a WebAuthn binding's PublicKeyCredential JSON from
	// navigator.credentials.create, and Name the key's name ("YubiKey 5").
	Credential string `json:",omitempty"`
	Name       string `json:",omitempty"`
}

package mfa

import "errors"

// Errors returned by this package. Check them with errors.Is.
var (
	// ErrInvalidCode reports a code that does not match. Every failure that
	// must look the same to the client is, or wraps, ErrInvalidCode.
	ErrInvalidCode = errors.New("mfa: invalid code")
	// ErrMalformedCode reports a code of the wrong length or with a non-digit.
	// errors.Is(ErrMalformedCode, ErrInvalidCode) is true.
	ErrMalformedCode error = &kindError{msg: "mfa: malformed code", kind: ErrInvalidCode}
	// ErrReplayed reports a correct code whose time step was already used.
	ErrReplayed = errors.New("mfa: code already used")
	// ErrLocked reports an account whose failure budget is spent; the concrete
	// error is a *LockedError.
	ErrLocked = errors.New("mfa: locked")
	// ErrResyncFailed is the single error of a failed resync; it never tells
	// which of the two codes was right.
	ErrResyncFailed = errors.New("mfa: resync failed")
	// ErrNotFound reports an unknown device (returned by StepStore
	// implementations) or an empty candidate list.
	ErrNotFound = errors.New("mfa: device not found")
	// ErrInvalidParams reports parameters outside what the product supports.
	ErrInvalidParams = errors.New("mfa: invalid parameters")
	// ErrInvalidSecret reports a secret that is empty, too short, too long or
	// not valid base32.
	ErrInvalidSecret = errors.New("mfa: invalid secret")
	// ErrInvalidKeyURI reports an otpauth URI that ParseKeyURI refuses.
	ErrInvalidKeyURI = errors.New("mfa: invalid key uri")
	// ErrInvalidKeyring reports a key ring string that ParseKeyring refuses.
	ErrInvalidKeyring = errors.New("mfa: invalid keyring")
	// ErrUnknownKey reports a sealed value whose key id is not in the ring.
	ErrUnknownKey = errors.New("mfa: unknown key id")
	// ErrOpen reports a sealed value that does not authenticate: wrong key,
	// wrong additional data (another row) or tampered ciphertext.
	ErrOpen = errors.New("mfa: cannot open sealed value")
	// ErrTooLarge reports an import file over its size limit.
	ErrTooLarge = errors.New("mfa: input too large")
	// ErrHostileXML reports an XML document with a DTD, an entity
	// declaration or nesting deeper than allowed.
	ErrHostileXML = errors.New("mfa: hostile xml refused")
	// ErrInvalidPSKC reports a PSKC document that cannot be read as a whole.
	ErrInvalidPSKC = errors.New("mfa: invalid pskc document")
	// ErrPSKCKey reports an encrypted PSKC document without a usable
	// pre-shared key or password, or with a wrong one.
	ErrPSKCKey = errors.New("mfa: pskc decryption key missing or wrong")
	// ErrInvalidCSV reports a CSV file that cannot be read as a whole.
	ErrInvalidCSV = errors.New("mfa: invalid csv")
	// ErrQRCode reports a failure to render a QR code.
	ErrQRCode = errors.New("mfa: cannot render qr code")
)

// kindError is a sentinel that is also another sentinel.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

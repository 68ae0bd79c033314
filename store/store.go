// Package store defines the app store: the account directory, the audit log,
// the notification outbox, MFA devices, the hardware token inventory, SMS
// challenges, operation grants, failure budgets, the index of unbind appeals
// and the rate-limit counters the API replicas share.
// Two implementations satisfy Store: pgstore (PostgreSQL through pgx) for
// production and sqlitestore (modernc.org/sqlite, no cgo) for the dev stack.
// The contract suite in storetest runs the same cases against both.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
)

// Errors returned by every Store implementation. Callers check them with errors.Is.
var (
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a uniqueness or state rule refused the write.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable means the database could not be reached; callers answer 503.
	ErrUnavailable = errors.New("store: unavailable")

	// ErrChallengeExpired means an SMS challenge is past its expiry.
	ErrChallengeExpired = errors.New("store: sms challenge expired")
	// ErrChallengeUsed means an SMS challenge was already used.
	ErrChallengeUsed = errors.New("store: sms challenge already used")
	// ErrChallengeExhausted means an SMS challenge has no tries left.
	ErrChallengeExhausted = errors.New("store: sms challenge has no tries left")

	// ErrGrantMismatch means an operation grant is for another action or resource.
	ErrGrantMismatch = errors.New("store: grant is for another operation")
	// ErrGrantUsed means an operation grant was already used.
	ErrGrantUsed = errors.New("store: grant already used")
	// ErrGrantExpired means an operation grant is past its expiry.
	ErrGrantExpired = errors.New("store: grant expired")
)

// SerialConflictError is the error of ImportTokens when serials of the batch
// are already in the inventory or repeated within the batch. It matches
// ErrConflict with errors.Is; its message gives only the count.
type SerialConflictError struct {
	Serials []string // the clashing serials, sorted
}

// Error returns a message with the number of clashing serials.
func (e *SerialConflictError) Error() string {
	return fmt.Sprintf("store: %d serial(s) already in the inventory or repeated in the batch", len(e.Serials))
}

// Is reports whether target is ErrConflict.
func (e *SerialConflictError) Is(target error) bool { return target == ErrConflict }

// AccountType says whether an account belongs to a person or a company.
type AccountType string

// Account types.
const (
	Personal   AccountType = "personal"
	Enterprise AccountType = "enterprise"
)

// LoginKind is the kind of login id an account was registered with.
type LoginKind string

// Login kinds from the seed: QQ, email, WeChat and WeChat official account.
const (
	LoginQQ             LoginKind = "qq"
	LoginEmail          LoginKind = "email"
	LoginWeChat         LoginKind = "wechat"
	LoginWeChatOfficial LoginKind = "wechat_official"
)

// LoginMethod is how login protection is checked for an account.
type LoginMethod string

// Login methods: ordinary accounts use the platform's security-center token,
// beta accounts their MFA device.
const (
	LoginSecurityCenter LoginMethod = "security_center"
	LoginMFA            LoginMethod = "mfa"
)

// Login is one login id of an account.
type Login struct {
	Kind LoginKind `json:"kind"`
	ID   string    `json:"id"`
}

// RealName is the account's real-name verification record.
type RealName struct {
	Verified bool   `json:"verified"`
	Name     string `json:"name,omitempty"`
	IDNumber string `json:"id_number,omitempty"`
}

// Company is the enterprise record of an enterprise account.
type Company struct {
	Name      string `json:"name,omitempty"`
	RegNumber string `json:"reg_number,omitempty"`
}

// Account is an entry of the account directory.
type Account struct {
	ID          string      `json:"account_id"`
	Type        AccountType `json:"type"`
	BoundPhone  string      `json:"bound_phone"`
	Email       string      `json:"email,omitempty"`
	Logins      []Login     `json:"logins"`
	RealName    RealName    `json:"real_name"`
	Company     Company     `json:"company"`
	LoginMethod LoginMethod `json:"login_method"`
	// Locale is the language of the messages to the owner: "zh-CN" or
	// "en"; empty means DefaultLocale.
	Locale string `json:"locale"`
	// TimeZone is the IANA zone of the times in those messages; empty
	// means DefaultTimeZone.
	TimeZone  string    `json:"time_zone"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// The directory's defaults of Account.Locale and Account.TimeZone.
const (
	DefaultLocale   = "zh-CN"
	DefaultTimeZone = "Asia/Shanghai"
)

// WithDefaults returns a with an empty Locale or TimeZone set to its
// default; PutAccount stores it so.
func (a Account) WithDefaults() Account {
	if a.Locale == "" {
		a.Locale = DefaultLocale
	}
	if a.TimeZone == "" {
		a.TimeZone = DefaultTimeZone
	}
	return a
}

// AuditEntry is one append-only audit record. Details never hold secrets,
// codes, ID numbers or document bytes.
type AuditEntry struct {
	ID        int64             `json:"id"`
	At        time.Time         `json:"at"`
	Actor     string            `json:"actor"`   // "console", "admin:<sub>", "reviewer:<sub>", "applicant:<appeal>", "system"
	Action    string            `json:"action"`  // dotted verb, e.g. "account.put", "device.bind"
	Outcome   string            `json:"outcome"` // "ok", "denied", "invalid", "failed"
	AccountID string            `json:"account_id,omitempty"`
	Subject   string            `json:"subject,omitempty"` // appeal id, device id, serial…
	RemoteIP  string            `json:"remote_ip,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	AccountID string // empty: all accounts
	Subject   string // empty: all subjects
	BeforeID  int64  // 0: from the newest
	Limit     int    // 0: 100; capped at 1000
}

// OutboxMessage is a notification captured by the dev notifier (and kept for
// inspection at GET /dev/outbox).
type OutboxMessage struct {
	ID      int64             `json:"id"`
	At      time.Time         `json:"at"`
	Channel string            `json:"channel"` // "sms", "email", "webhook"
	To      string            `json:"to"`
	Kind    string            `json:"kind"` // e.g. "sms_code", "device_bound", "revoke_sessions"
	Body    string            `json:"body"`
	Data    map[string]string `json:"data,omitempty"`
}

// Migrator is a store whose schema comes from migrations embedded in the
// binary; `mfaflow migrate` calls it through this interface.
type Migrator interface {
	// Migrate applies, in order and in one transaction, the embedded
	// migrations the database has not applied yet. It is idempotent and safe
	// to run from several processes at once. It returns ErrUnavailable when
	// the database cannot be reached.
	Migrate(ctx context.Context) error
}

// Store is the app store. Implementations are safe for concurrent use.
// Unless a method says otherwise, every method returns an error matching
// ErrUnavailable when the database cannot be reached.
type Store interface {
	// Ping checks the database is reachable. It returns ErrUnavailable otherwise.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error

	// PutAccount creates or replaces the directory entry a.ID. It reports
	// whether the entry was created. CreatedAt is kept on replace. It returns
	// ErrConflict when one of a.Logins belongs to another account.
	PutAccount(ctx context.Context, a Account) (created bool, err error)
	// GetAccount returns the entry or ErrNotFound.
	GetAccount(ctx context.Context, id string) (Account, error)
	// FindAccountByLogin returns the account that has the login (kind, id),
	// or ErrNotFound.
	FindAccountByLogin(ctx context.Context, kind LoginKind, id string) (Account, error)

	// AppendAudit appends e (ID and, when zero, At are assigned) and returns it.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// ListAudit returns entries matching f, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// AddOutbox stores m (ID and, when zero, At are assigned).
	AddOutbox(ctx context.Context, m OutboxMessage) (OutboxMessage, error)
	// ListOutbox returns messages to the recipient (all when to is empty), newest first.
	ListOutbox(ctx context.Context, to string, limit int) ([]OutboxMessage, error)

	DeviceStore
	TokenStore
	ChallengeStore
	SealedStore
	GrantStore
	mfa.BudgetStore
	CheckStore
	AppealStore
	RateLimiter
	RecoveryCodeStore
	WebAuthnStore
	Unbinder
	SessionStore
}

// DeviceType is the kind of an MFA device.
type DeviceType string

// Device types.
const (
	Virtual  DeviceType = "virtual"  // an authenticator app
	Hardware DeviceType = "hardware" // a token card from the inventory
	// SecurityCenter is the platform's own security-center app, the login
	// protection of ordinary accounts: one provisioned TOTP authenticator
	// per account, at most one not revoked at a time.
	SecurityCenter DeviceType = "security_center"
	// WebAuthn is a security key or passkey (SPEC §6c). It has no sealed
	// secret: its credential (public key, sign count) is a
	// WebAuthnCredential.
	WebAuthn DeviceType = "webauthn"
)

// MFA reports whether t is a device type of the account's MFA factor set:
// an app, a token card or a WebAuthn key (not the security-center app).
func (t DeviceType) MFA() bool { return t == Virtual || t == Hardware || t == WebAuthn }

// DeviceStatus is where a device is in its life.
type DeviceStatus string

// Device statuses.
const (
	DevicePending DeviceStatus = "pending"
	DeviceActive  DeviceStatus = "active"
	DeviceRevoked DeviceStatus = "revoked"
)

// Device is an MFA device bound (or being bound) to an account.
type Device struct {
	ID            string       `json:"id"` // assigned by CreateDevice when empty
	AccountID     string       `json:"account_id"`
	Type          DeviceType   `json:"type"`
	Name          string       `json:"name,omitempty"`
	Serial        string       `json:"serial,omitempty"` // hardware only
	Secret        mfa.Sealed   `json:"-"`                // sealed with mfa.AAD(string(SealedDevices), ID)
	Algorithm     string       `json:"algorithm"`        // "SHA1", "SHA256", "SHA512"
	Digits        int          `json:"digits"`
	PeriodSeconds int          `json:"period_seconds"`
	LastStep      int64        `json:"-"` // last time step accepted; codes at or before it are replays
	Drift         int64        `json:"drift"`
	Status        DeviceStatus `json:"status"`
	CreatedAt     time.Time    `json:"created_at"`
	BoundAt       time.Time    `json:"bound_at,omitzero"`     // zero while pending
	LastUsedAt    time.Time    `json:"last_used_at,omitzero"` // zero until first use
	RevokedAt     time.Time    `json:"revoked_at,omitzero"`
}

// Protection is an account's MFA protection scope.
type Protection struct {
	Login     bool      `json:"login"`
	Operation bool      `json:"operation"`
	UpdatedAt time.Time `json:"updated_at,omitzero"` // zero: never set
}

// DeviceStore keeps MFA devices, their used time steps and the accounts'
// protection settings. The number of active MFA devices per account is
// limited by the caller; the store allows at most one security-center
// device per account that is not revoked.
type DeviceStore interface {
	// CreateDevice stores d (ID assigned when empty, CreatedAt set to now,
	// BoundAt set to now when d is active and BoundAt is zero) and returns
	// it. It returns ErrConflict when the ID exists, the serial is on
	// another device that is not revoked, or d is a SecurityCenter device
	// and the account has one that is not revoked.
	CreateDevice(ctx context.Context, d Device) (Device, error)
	// GetDevice returns the device or ErrNotFound.
	GetDevice(ctx context.Context, id string) (Device, error)
	// ListDevices returns the account's devices of every status, oldest first.
	ListDevices(ctx context.Context, accountID string) ([]Device, error)
	// ActivateDevice moves a pending device to active, bound at at. It
	// returns ErrNotFound, or ErrConflict when the device is not pending.
	ActivateDevice(ctx context.Context, id string, at time.Time) (Device, error)
	// RevokeDevice revokes the device at at. It reports false when the
	// device was already revoked, and returns ErrNotFound for an unknown one.
	RevokeDevice(ctx context.Context, id string, at time.Time) (bool, error)
	// TouchDevice records a use at at (last_used_at never goes back). It
	// returns ErrNotFound for an unknown device.
	TouchDevice(ctx context.Context, id string, at time.Time) error
	// ResyncDevice records drift (in steps) and, like AdvanceStep, moves the
	// last used step to step if and only if step is greater; it reports
	// false, changing nothing, otherwise. It returns ErrNotFound for an
	// unknown device.
	ResyncDevice(ctx context.Context, id string, drift, step int64) (bool, error)
	// AdvanceStep sets the device's last used step to step if and only if
	// step is greater (compare-and-set) and reports false otherwise: the code
	// was used already. It returns an error matching both ErrNotFound and
	// mfa.ErrNotFound for an unknown device.
	AdvanceStep(ctx context.Context, deviceID string, step int64) (bool, error)

	// GetProtection returns the account's protection; the zero Protection
	// when it was never set.
	GetProtection(ctx context.Context, accountID string) (Protection, error)
	// SetProtection stores the account's protection (UpdatedAt set to now)
	// and returns it.
	SetProtection(ctx context.Context, accountID string, p Protection) (Protection, error)
}

// CheckStore serves the console's code checks in two calls where the
// separate methods take a dozen round trips: BeginCheck reads what the
// check needs and spends one attempt of the account's failure budget,
// FinishCheck consumes the matched step and records the success. Between
// the two the caller evaluates the code (mfa.MatchAny). pgstore groups the
// calls of concurrent requests into shared statements (group commit);
// every call still gets exactly its own answer.
type CheckStore interface {
	// BeginCheck returns the account's login method, protection, active
	// devices of r.Types (nil: by the login method: security center, or
	// virtual and hardware for LoginMFA) and whether it has an open unbind
	// appeal. When the check can go ahead — r.Purpose's protection is on
	// and there is a device — it also spends one attempt of the budget, as
	// SpendAttempt with r.Policy at r.Now does, and sets Spent, Budget and
	// Allowed. It returns ErrNotFound for an unknown account.
	BeginCheck(ctx context.Context, r CheckRequest) (CheckStart, error)
	// FinishCheck consumes f.Step of the device (AdvanceStep's
	// compare-and-set) and, when it does, in the same transaction records
	// the use (TouchDevice), clears the account's failure budget
	// (ResetBudget), appends f.Audit when its Action is set (for the
	// account f.AccountID) and creates f.Grant when it is set. It
	// reports false, writing nothing, when the step was used already. It
	// returns ErrNotFound for a device that is not the account's, and
	// ErrConflict when the grant ID exists.
	FinishCheck(ctx context.Context, f CheckFinish) (bool, error)
	// Check runs a whole code check: BeginCheck's reads and spend; then,
	// only when the attempt was spent and allowed, eval with the start;
	// then FinishCheck of each finish eval returns, in order, until one
	// consumes its step. The attempt is counted before eval runs, and the
	// outcome is returned only once the spend is durable: when the store
	// cannot make it so, Check returns an error and no outcome, whatever
	// eval said. eval must not call the store and may be called again when
	// the store retries the check (the last call's finishes are the ones
	// applied). eval's error is returned in the outcome (the spend stays).
	// sqlitestore runs the whole check as one transaction, shared by the
	// concurrent checks of a batch (group commit); pgstore runs the two
	// halves as BeginCheck and FinishCheck do.
	Check(ctx context.Context, r CheckRequest, eval CheckEval) (CheckOutcome, error)
}

// CheckEval evaluates a code once its attempt is counted (CheckStore.Check)
// and returns the finishes to try, in order.
type CheckEval func(start CheckStart) ([]CheckFinish, error)

// CheckOutcome is the answer of CheckStore.Check.
type CheckOutcome struct {
	Start     CheckStart
	Evaluated bool          // eval ran: the attempt was spent and allowed
	EvalErr   error         // eval's error; no finish was tried
	Finishes  []CheckFinish // what eval returned
	Consumed  int           // index in Finishes of the finish whose step was consumed; -1: none
}

// RunCheck is CheckStore.Check made of BeginCheck and FinishCheck calls,
// for stores that keep the two halves apart.
func RunCheck(ctx context.Context, begin func(context.Context, CheckRequest) (CheckStart, error),
	finish func(context.Context, CheckFinish) (bool, error), r CheckRequest, eval CheckEval) (CheckOutcome, error) {
	out := CheckOutcome{Consumed: -1}
	st, err := begin(ctx, r)
	if err != nil {
		return out, err
	}
	out.Start = st
	if !st.Spent || !st.Allowed {
		return out, nil
	}
	out.Evaluated = true
	if out.Finishes, out.EvalErr = eval(st); out.EvalErr != nil {
		return out, nil
	}
	for i, f := range out.Finishes {
		ok, err := finish(ctx, f)
		if err != nil {
			return out, err
		}
		if ok {
			out.Consumed = i
			break
		}
	}
	return out, nil
}

// CheckPurpose is the protection a code check needs to be on.
type CheckPurpose string

// Check purposes.
const (
	CheckAny       CheckPurpose = ""          // no protection needed (settings, unbind, login by method)
	CheckLogin     CheckPurpose = "login"     // Protection.Login must be on
	CheckOperation CheckPurpose = "operation" // Protection.Operation must be on
)

// CheckRequest is the input of BeginCheck.
type CheckRequest struct {
	AccountID string
	Purpose   CheckPurpose
	Types     []DeviceType // device types to check; nil: by the account's login method
	Now       time.Time
	Policy    func(failures int, now time.Time) (lockedUntil time.Time, hard bool)
}

// CheckStart is the answer of BeginCheck.
type CheckStart struct {
	LoginMethod LoginMethod
	Protection  Protection
	Devices     []Device // active devices of the asked types, oldest first
	OpenAppeal  bool     // an unbind appeal of the account is open
	Spent       bool     // the check went ahead and an attempt was spent
	Budget      mfa.BudgetState
	Allowed     bool // as SpendAttempt's allowed; false when the budget is locked
}

// CheckFinish is the input of FinishCheck.
type CheckFinish struct {
	AccountID string
	DeviceID  string
	Step      int64
	At        time.Time  // the use, for last_used_at
	Audit     AuditEntry // appended when the step is consumed and Action is set
	Grant     *Grant     // created when the step is consumed, when set (ID and ExpiresAt required)
}

// CheckTypes returns the device types a check of r covers for an account
// with login method m.
func (r CheckRequest) CheckTypes(m LoginMethod) []DeviceType {
	switch {
	case r.Types != nil:
		return r.Types
	case m == LoginMFA:
		return []DeviceType{Virtual, Hardware}
	}
	return []DeviceType{SecurityCenter}
}

// Protected reports whether p has r's purpose on.
func (r CheckRequest) Protected(p Protection) bool {
	switch r.Purpose {
	case CheckLogin:
		return p.Login
	case CheckOperation:
		return p.Operation
	}
	return true
}

// TokenState is where a hardware token is in the inventory.
type TokenState string

// Token states.
const (
	TokenUnassigned TokenState = "unassigned"
	TokenBound      TokenState = "bound"
	TokenRevoked    TokenState = "revoked"
)

// HardwareToken is a token card of the platform's inventory.
type HardwareToken struct {
	Serial        string     `json:"serial"`
	Seed          mfa.Sealed `json:"-"` // sealed with mfa.AAD(string(SealedTokens), Serial)
	Algorithm     string     `json:"algorithm"`
	Digits        int        `json:"digits"`
	PeriodSeconds int        `json:"period_seconds"`
	State         TokenState `json:"state"`                // ImportTokens stores unassigned
	AccountID     string     `json:"account_id,omitempty"` // set while bound
	DeviceID      string     `json:"device_id,omitempty"`  // set while bound
	BatchID       string     `json:"batch_id,omitempty"`
	ImportedAt    time.Time  `json:"imported_at"`
	BoundAt       time.Time  `json:"bound_at,omitzero"`
}

// TokenStore keeps the hardware token inventory.
type TokenStore interface {
	// ImportTokens adds the batch, all or nothing, as unassigned tokens
	// imported now, and returns how many it added. It returns a
	// *SerialConflictError (matching ErrConflict) listing every serial that
	// is already in the inventory or repeated in the batch.
	ImportTokens(ctx context.Context, batch []HardwareToken) (int, error)
	// GetToken returns the token or ErrNotFound.
	GetToken(ctx context.Context, serial string) (HardwareToken, error)
	// AssignToken binds an unassigned token to the account's device at at
	// (compare-and-set: of concurrent calls for one serial exactly one wins).
	// Assigning it again to the same account and device succeeds. It returns
	// ErrNotFound for an unknown serial and ErrConflict when the token is
	// bound elsewhere or revoked.
	AssignToken(ctx context.Context, serial, accountID, deviceID string, at time.Time) error
	// ReleaseToken returns a token bound to deviceID to the unassigned pool.
	// It reports false, changing nothing, when the token is not bound to
	// deviceID (already released, or bound since to another device), and
	// returns ErrNotFound for an unknown serial.
	ReleaseToken(ctx context.Context, serial, deviceID string) (bool, error)
}

// SMSChallenge is an SMS verification code sent to an account's phone; only
// the code's hash is stored.
type SMSChallenge struct {
	ID        string    `json:"id"` // assigned by CreateSMSChallenge when empty
	AccountID string    `json:"account_id"`
	Purpose   string    `json:"purpose"` // e.g. "bind_device"
	CodeHash  []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	TriesLeft int       `json:"tries_left"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// ChallengeStore keeps SMS challenges.
type ChallengeStore interface {
	// CreateSMSChallenge stores c (ID assigned when empty, CreatedAt set to
	// now) and returns it. It returns ErrConflict when the ID exists.
	CreateSMSChallenge(ctx context.Context, c SMSChallenge) (SMSChallenge, error)
	// AttemptSMSChallenge atomically spends one try of the challenge at now
	// and returns it with the remaining tries, for the caller to compare the
	// code's hash. It returns ErrNotFound, ErrChallengeUsed,
	// ErrChallengeExpired or ErrChallengeExhausted (in that order of
	// precedence), spending nothing, when the challenge cannot be tried.
	AttemptSMSChallenge(ctx context.Context, id string, now time.Time) (SMSChallenge, error)
	// UseSMSChallenge marks the challenge used at now (compare-and-set: it
	// succeeds once). It returns ErrNotFound, ErrChallengeUsed or
	// ErrChallengeExpired.
	UseSMSChallenge(ctx context.Context, id string, now time.Time) error
}

// SealedTable names a table holding sealed secrets. Its value is the table
// argument of mfa.AAD for the rows' additional data.
type SealedTable string

// Tables with sealed secrets.
const (
	SealedDevices SealedTable = "devices"         // row id: Device.ID
	SealedTokens  SealedTable = "hardware_tokens" // row id: HardwareToken.Serial
)

// SealedRow is one sealed secret, for key rotation.
type SealedRow struct {
	Table  SealedTable
	ID     string
	Sealed mfa.Sealed
}

// SealedStore lets `mfaflow keys rotate` re-encrypt secrets online.
type SealedStore interface {
	// ListSealed returns up to limit (0: 100, at most 1000) rows of table
	// with an ID after afterID, in ID order; page with the last ID returned.
	ListSealed(ctx context.Context, table SealedTable, afterID string, limit int) ([]SealedRow, error)
	// Reseal replaces the sealed value of row id if its key id is still
	// oldKeyID (compare-and-set). It returns ErrNotFound for an unknown row
	// and ErrConflict when the row's key id changed meanwhile.
	Reseal(ctx context.Context, table SealedTable, id, oldKeyID string, s mfa.Sealed) error
}

// Grant is a single-use permission for one sensitive operation (e.g. delete
// a VM), issued after a fresh MFA code.
type Grant struct {
	ID        string    `json:"-"` // hex SHA-256 of the grant token (GrantID); the token itself is never stored
	AccountID string    `json:"account_id"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	DeviceID  string    `json:"device_id,omitempty"` // the device whose code earned it
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// GrantID returns the ID under which the grant with the given token is
// stored: the token's SHA-256 in lowercase hex.
func GrantID(token string) string { return sha256Hex(token) }

// sha256Hex returns the SHA-256 of s in lowercase hex: how the store keeps
// bearer tokens, which it never stores themselves.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// GrantStore keeps operation grants.
type GrantStore interface {
	// CreateGrant stores g (CreatedAt set to now, UsedAt left zero) and
	// returns it. It returns ErrConflict when the ID exists, and an error
	// when g has no ID or no ExpiresAt.
	CreateGrant(ctx context.Context, g Grant) (Grant, error)
	// ConsumeGrant marks the grant used at now if and only if it belongs to
	// accountID, action and resource match exactly, and it is unused and not
	// expired at now (compare-and-set: of concurrent calls exactly one
	// succeeds), and returns it. It returns ErrNotFound for an unknown grant
	// or one of another account (never revealing it exists),
	// ErrGrantMismatch, ErrGrantUsed or ErrGrantExpired (checked in that
	// order), changing nothing.
	ConsumeGrant(ctx context.Context, id, accountID, action, resource string, now time.Time) (Grant, error)
	// DeleteExpiredGrants removes grants that expired before cutoff, used
	// or not, and returns how many.
	DeleteExpiredGrants(ctx context.Context, cutoff time.Time) (int, error)
}

// Appeal is the store's record of an unbind appeal: what the API must look
// up fast and what must be unique. The UnbindAppeal workflow is the source
// of truth for the appeal's state; Status mirrors it. It holds no PII.
type Appeal struct {
	ID            string    `json:"appeal_id"`
	AccountID     string    `json:"account_id"`
	ApplicantType string    `json:"applicant_type"`
	TokenHash     string    `json:"-"`      // TokenHash of the applicant's 256-bit access token; the token is never stored
	Status        string    `json:"status"` // mirrors the workflow's status
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	ClosedAt      time.Time `json:"closed_at,omitzero"` // zero while the appeal is open
}

// TokenHash returns the hash under which an appeal's access token is stored
// (Appeal.TokenHash): the token's SHA-256 in lowercase hex, like GrantID.
func TokenHash(token string) string { return sha256Hex(token) }

// AppealStore keeps the index of unbind appeals. An account has at most one
// open appeal (ClosedAt zero) at a time.
type AppealStore interface {
	// CreateAppeal stores a as a new open appeal (CreatedAt and UpdatedAt
	// set to now, ClosedAt ignored) and returns it. It returns ErrConflict
	// when the ID exists, the account already has an open appeal (of
	// concurrent creations for one account exactly one wins) or the token
	// hash exists, and an error when a has no ID, account, applicant type or
	// status, or a TokenHash that is not a hex SHA-256.
	CreateAppeal(ctx context.Context, a Appeal) (Appeal, error)
	// GetAppeal returns the appeal or ErrNotFound.
	GetAppeal(ctx context.Context, id string) (Appeal, error)
	// FindAppealByToken returns the appeal whose TokenHash is tokenHash, or
	// ErrNotFound.
	FindAppealByToken(ctx context.Context, tokenHash string) (Appeal, error)
	// SetAppealStatus records the workflow's status at at (now when zero) as
	// Status and UpdatedAt. When closed is true it also sets ClosedAt to at,
	// unless it is set already (idempotent), and the account may file a new
	// appeal. A closed appeal is never reopened: on it, a call with closed
	// false changes nothing and returns nil (a late retry), one with closed
	// true updates Status and UpdatedAt only. It returns ErrNotFound for an
	// unknown appeal, and an error for an empty status.
	SetAppealStatus(ctx context.Context, id, status string, closed bool, at time.Time) error
	// ListAppeals returns the appeals with the status and of the account
	// (empty: any), newest first, at most limit (0: 100, capped at 1000).
	ListAppeals(ctx context.Context, status, accountID string, limit int) ([]Appeal, error)
}

// UnbindRequest is the input of UnbindAccount.
type UnbindRequest struct {
	AccountID string
	AppealID  string
	Status    string // the appeal's closed status, e.g. "unbound"
	At        time.Time
	// Audit is appended in the same transaction (its Details gain
	// "devices" and "count"); its Action and Subject (the appeal) mark the
	// unbind done.
	Audit AuditEntry
}

// Unbinder unbinds an account after an approved appeal (SPEC §6d).
type Unbinder interface {
	// UnbindAccount does, in one transaction: revoke every MFA device of
	// the account (virtual, hardware, WebAuthn) not yet revoked at r.At and
	// return its card to the pool, delete the recovery codes, reset the
	// failure budget, turn protection off, close the appeal's row with
	// r.Status, and append r.Audit. It returns the devices it revoked. When
	// an entry with r.Audit's action and outcome for the appeal exists, it
	// changes nothing and returns the devices that entry recorded: an
	// appeal unbinds at most once, and a retry answers the same.
	UnbindAccount(ctx context.Context, r UnbindRequest) ([]string, error)
}

// RecoveryCode is one single-use recovery code of an account (SPEC §6b).
// Only its keyed hash is stored: mfa.HashRecoveryCode with the key the
// ring derives for KeyID (mfa.Keyring.DeriveKeyFor), so a rotation leaves
// older rows checkable while their key stays in the ring.
type RecoveryCode struct {
	ID        string    `json:"id"` // assigned by ReplaceRecoveryCodes when empty
	AccountID string    `json:"account_id"`
	KeyID     string    `json:"key_id"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"` // when its set was made
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// RecoveryCodeStore keeps the accounts' recovery codes. An account has at
// most one set: a new one replaces the old whole.
type RecoveryCodeStore interface {
	// ReplaceRecoveryCodes deletes every recovery code of the account, used
	// or not, and stores codes (IDs assigned when empty, CreatedAt set to
	// now, AccountID set to accountID) as its new set, in one transaction.
	// With onlyIfNone it changes nothing and reports false when the account
	// has an unused code (of concurrent calls with onlyIfNone exactly one
	// stores its set). It returns ErrConflict when an ID exists.
	ReplaceRecoveryCodes(ctx context.Context, accountID string, codes []RecoveryCode, onlyIfNone bool) (bool, error)
	// ListRecoveryCodes returns the account's unused codes, oldest first.
	ListRecoveryCodes(ctx context.Context, accountID string) ([]RecoveryCode, error)
	// UseRecoveryCode marks the code used at at if and only if it is the
	// account's and unused (compare-and-set: of concurrent calls exactly one
	// succeeds). It reports false, changing nothing, otherwise.
	UseRecoveryCode(ctx context.Context, accountID, id string, at time.Time) (bool, error)
	// ClearRecoveryCodes deletes every recovery code of the account and
	// returns how many of them were unused.
	ClearRecoveryCodes(ctx context.Context, accountID string) (int, error)
}

// WebAuthnCredential is the credential of a WebAuthn device. Nothing in it
// is secret: the private key never leaves the authenticator.
type WebAuthnCredential struct {
	DeviceID        string   `json:"device_id"`
	AccountID       string   `json:"account_id"`
	CredentialID    []byte   `json:"credential_id"`
	UserHandle      []byte   `json:"-"` // the account's opaque WebAuthn user handle
	PublicKey       []byte   `json:"-"` // COSE
	SignCount       uint32   `json:"sign_count"`
	AAGUID          []byte   `json:"aaguid"`
	Transports      []string `json:"transports,omitempty"`
	BackupEligible  bool     `json:"backup_eligible"`
	BackupState     bool     `json:"backup_state"`
	UserVerified    bool     `json:"user_verified"`
	AttestationType string   `json:"attestation_type,omitempty"`
}

// WebAuthnChallenge is a pending assertion ceremony: single use, bound to
// an account, a purpose and (for operations) an action and resource.
type WebAuthnChallenge struct {
	ID        string    `json:"id"` // assigned by CreateWebAuthnChallenge when empty
	AccountID string    `json:"account_id"`
	Purpose   string    `json:"purpose"` // "login", "operation" or "step_up"
	Action    string    `json:"action,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	Session   []byte    `json:"-"` // the relying party's session data (holds the challenge)
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// WebAuthnStore keeps WebAuthn credentials and assertion challenges.
type WebAuthnStore interface {
	// CreateWebAuthnDevice stores d (type WebAuthn, active, BoundAt now, ID
	// assigned when empty) and its credential c in one transaction and
	// returns the device. It returns ErrConflict when the device ID or the
	// credential ID exists.
	CreateWebAuthnDevice(ctx context.Context, d Device, c WebAuthnCredential) (Device, error)
	// ListWebAuthnCredentials returns the credentials of the account's
	// active WebAuthn devices, oldest first.
	ListWebAuthnCredentials(ctx context.Context, accountID string) ([]WebAuthnCredential, error)
	// AdvanceSignCount moves the device's stored signature counter from old
	// to new and records a use at at, if and only if the stored counter is
	// still old and the device is active (compare-and-set); it reports
	// false, changing nothing, otherwise.
	AdvanceSignCount(ctx context.Context, deviceID string, old, new uint32, at time.Time) (bool, error)
	// CreateWebAuthnChallenge stores c (ID assigned when empty, CreatedAt
	// now) and returns it. It returns ErrConflict when the ID exists.
	CreateWebAuthnChallenge(ctx context.Context, c WebAuthnChallenge) (WebAuthnChallenge, error)
	// UseWebAuthnChallenge marks the account's challenge used at now if it
	// is unused and unexpired (compare-and-set: it succeeds once) and
	// returns it. It returns ErrNotFound (also for another account's),
	// ErrChallengeUsed or ErrChallengeExpired, changing nothing.
	UseWebAuthnChallenge(ctx context.Context, id, accountID string, now time.Time) (WebAuthnChallenge, error)
}

// RateLimiter counts events in fixed windows shared by every API replica.
// Keys are opaque strings such as "appeal-create:ip:192.0.2.1", stored as
// given: they must hold no secrets.
type RateLimiter interface {
	// Hit counts one event for key in the window of length window (used to
	// the microsecond) that contains now, windows being aligned on the Unix
	// epoch, and reports whether the window's count, this event included, is
	// within limit. When it is not, retryAfter is the time from now to the
	// window's end; it is zero otherwise. Concurrent hits are counted exactly
	// (an atomic upsert), refused ones too. Windows that ended a while ago
	// may be pruned. It returns an error when window is under a microsecond
	// or limit is negative.
	Hit(ctx context.Context, key string, window time.Duration, limit int, now time.Time) (allowed bool, retryAfter time.Duration, err error)
	// Peek reports whether one more event for key in the window containing
	// now would be within limit, without counting it: allowed is true when
	// the window's count is under limit, and retryAfter is as for Hit. A
	// caller that counts only some events (filings that pass a check) peeks
	// first and hits after. It returns the errors Hit returns for a bad
	// window or limit.
	Peek(ctx context.Context, key string, window time.Duration, limit int, now time.Time) (allowed bool, retryAfter time.Duration, err error)
}

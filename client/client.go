// Package client is a typed Go client for mfaflow's console API, written
// against the OpenAPI document the server serves at /openapi.yaml (the
// operations tagged console). Each method is one operationId; a refusal is
// returned as *Error with the document's code, so callers branch on
// err.(*client.Error).Code, never on a message. The end-to-end tests drive
// the API through this client with every exchange validated against the
// document, and TestClientCoversConsole fails when the document gains a
// console operation the client lacks.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the console API with a console key.
type Client struct {
	// BaseURL is the service's URL, such as "https://mfa.example.com".
	BaseURL string
	// Key is the console API key sent as a bearer token.
	Key string
	// HTTP sends the requests; nil: http.DefaultClient.
	HTTP *http.Client
}

// New returns a client for the service at baseURL with the console key.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key}
}

// Error is a refusal: the answer's status and the document's error body.
type Error struct {
	Status  int
	Code    string // a code the document lists for this answer, e.g. "invalid_code"
	Message string
	Field   string // the offending field, for invalid_field and unknown_field
	// RetryAfter is the answer's Retry-After (429 locked, 503), or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("mfaflow: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	return s
}

// IsCode reports whether err is an *Error with code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Protection is what an account protects with MFA.
type Protection struct {
	Login     bool `json:"login"`
	Operation bool `json:"operation"`
}

// Operation is what a grant is for.
type Operation struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// WebAuthnAssertion answers a challenge of CreateWebAuthnChallenge with the
// browser's PublicKeyCredential JSON.
type WebAuthnAssertion struct {
	ChallengeID string          `json:"challenge_id"`
	Credential  json.RawMessage `json:"credential"`
}

// Proof is a step-up proof: one of its fields.
type Proof struct {
	Code         string             `json:"code,omitempty"`
	RecoveryCode string             `json:"recovery_code,omitempty"`
	WebAuthn     *WebAuthnAssertion `json:"webauthn,omitempty"`
}

// Device is one of an account's MFA devices.
type Device struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"` // virtual, hardware, webauthn, security_center
	Name       string     `json:"name,omitempty"`
	Serial     string     `json:"serial,omitempty"`
	Model      string     `json:"model,omitempty"`
	AAGUID     string     `json:"aaguid,omitempty"`
	BoundAt    time.Time  `json:"bound_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Binding is a binding in progress (createBinding, submitBindingSMSCode).
type Binding struct {
	BindingID  string    `json:"binding_id"`
	Status     string    `json:"status"` // awaiting_sms_code, awaiting_device_codes, awaiting_hardware_token, awaiting_webauthn
	DeviceType string    `json:"device_type,omitempty"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Virtual devices, after the SMS code: the key (shown once), its URI and QR.
	Secret     string `json:"secret,omitempty"`
	OTPAuthURI string `json:"otpauth_uri,omitempty"`
	QRURL      string `json:"qr_url,omitempty"`
	// WebAuthn, after the SMS code: {"publicKey":{…}} for navigator.credentials.create.
	CreationOptions json.RawMessage `json:"creation_options,omitempty"`
}

// ConfirmRequest confirms a binding: virtual Code1 and Code2, hardware
// Serial and Code, webauthn Credential and Name.
type ConfirmRequest struct {
	Code1      string          `json:"code1,omitempty"`
	Code2      string          `json:"code2,omitempty"`
	Serial     string          `json:"serial,omitempty"`
	Code       string          `json:"code,omitempty"`
	Credential json.RawMessage `json:"credential,omitempty"`
	Name       string          `json:"name,omitempty"`
	Protection *Protection     `json:"protection,omitempty"`
}

// Bound is a confirmed binding.
type Bound struct {
	BindingID  string     `json:"binding_id"`
	Status     string     `json:"status"`
	Device     Device     `json:"device"`
	Protection Protection `json:"protection"`
	// RecoveryCodes come, once, with the binding that leaves the account
	// with a device and no recovery codes.
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

// MFA is an account's devices and protection.
type MFA struct {
	AccountID              string     `json:"account_id"`
	Devices                []Device   `json:"devices"`
	Protection             Protection `json:"protection"`
	RecoveryCodesRemaining int        `json:"recovery_codes_remaining"`
}

// VerifyRequest is one check: Code, RecoveryCode (login only) or WebAuthn.
type VerifyRequest struct {
	Code         string             `json:"code,omitempty"`
	RecoveryCode string             `json:"recovery_code,omitempty"`
	WebAuthn     *WebAuthnAssertion `json:"webauthn,omitempty"`
	Purpose      string             `json:"purpose"` // login or operation
	Operation    *Operation         `json:"operation,omitempty"`
}

// Verified is a passed check; operations get a single-use Grant.
type Verified struct {
	Verified               bool      `json:"verified"`
	DeviceID               string    `json:"device_id,omitempty"`
	Grant                  string    `json:"grant,omitempty"`
	ExpiresAt              time.Time `json:"expires_at,omitempty"`
	Method                 string    `json:"method,omitempty"`
	RecoveryCodesRemaining *int      `json:"recovery_codes_remaining,omitempty"`
}

// Resynced is a re-aligned hardware card.
type Resynced struct {
	Resynced   bool   `json:"resynced"`
	Device     Device `json:"device"`
	DriftSteps int    `json:"drift_steps"`
}

// Challenge is a WebAuthn assertion challenge.
type Challenge struct {
	ChallengeID    string          `json:"challenge_id"`
	RequestOptions json.RawMessage `json:"request_options"`
	ExpiresAt      time.Time       `json:"expires_at"`
}

// RecoveryCodes is a new set, shown once.
type RecoveryCodes struct {
	RecoveryCodes          []string `json:"recovery_codes"`
	RecoveryCodesRemaining int      `json:"recovery_codes_remaining"`
}

// Operations lists the operationIds of the document this client implements.
var Operations = []string{
	"createBinding", "submitBindingSMSCode", "getBindingQR", "getBinding", "cancelBinding", "confirmBinding", "getMFA", "putProtection",
	"verifyMFA", "consumeGrant", "resyncHardwareToken", "deleteDevice", "createWebAuthnChallenge",
	"regenerateRecoveryCodes", "verifyLoginProtection",
}

func acct(id string) string { return "/v1/accounts/" + url.PathEscape(id) }

// CreateBinding starts binding a device of deviceType (virtual, hardware,
// webauthn); an account that has a device needs proof (createBinding).
func (c *Client) CreateBinding(ctx context.Context, accountID, deviceType string, proof *Proof) (Binding, error) {
	var out Binding
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/bindings", map[string]any{"device_type": deviceType, "proof": proof}, &out)
	return out, err
}

// SubmitBindingSMSCode gives the SMS code (submitBindingSMSCode).
func (c *Client) SubmitBindingSMSCode(ctx context.Context, accountID, bindingID, code string) (Binding, error) {
	var out Binding
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/bindings/"+url.PathEscape(bindingID)+"/sms-code", map[string]string{"code": code}, &out)
	return out, err
}

// BindingQR returns the PNG of a pending virtual device's otpauth URI (getBindingQR).
func (c *Client) BindingQR(ctx context.Context, accountID, bindingID string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, acct(accountID)+"/mfa/bindings/"+url.PathEscape(bindingID)+"/qr.png", nil, &out)
	return out, err
}

// Binding returns the account's latest binding, so a page can resume it;
// while it waits for the app's codes it carries the key again (getBinding).
func (c *Client) Binding(ctx context.Context, accountID, bindingID string) (Binding, error) {
	var out Binding
	err := c.do(ctx, http.MethodGet, acct(accountID)+"/mfa/bindings/"+url.PathEscape(bindingID), nil, &out)
	return out, err
}

// CancelBinding cancels a pending binding; one that already ended answers
// its state, a bound one a 409 wrong_state (cancelBinding).
func (c *Client) CancelBinding(ctx context.Context, accountID, bindingID string) (Binding, error) {
	var out Binding
	err := c.do(ctx, http.MethodDelete, acct(accountID)+"/mfa/bindings/"+url.PathEscape(bindingID), nil, &out)
	return out, err
}

// ConfirmBinding confirms the device (confirmBinding).
func (c *Client) ConfirmBinding(ctx context.Context, accountID, bindingID string, req ConfirmRequest) (Bound, error) {
	var out Bound
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/bindings/"+url.PathEscape(bindingID)+"/confirm", req, &out)
	return out, err
}

// MFA returns the account's devices and protection (getMFA).
func (c *Client) MFA(ctx context.Context, accountID string) (MFA, error) {
	var out MFA
	err := c.do(ctx, http.MethodGet, acct(accountID)+"/mfa", nil, &out)
	return out, err
}

// SetProtection changes the scope with a step-up proof (putProtection).
func (c *Client) SetProtection(ctx context.Context, accountID string, p Protection, proof Proof) (Protection, error) {
	var out struct {
		Protection Protection `json:"protection"`
	}
	err := c.do(ctx, http.MethodPut, acct(accountID)+"/mfa/protection", map[string]any{"login": p.Login, "operation": p.Operation, "proof": proof}, &out)
	return out.Protection, err
}

// Verify checks a code for login or an operation (verifyMFA).
func (c *Client) Verify(ctx context.Context, accountID string, req VerifyRequest) (Verified, error) {
	var out Verified
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/verify", req, &out)
	return out, err
}

// ConsumeGrant uses a grant, once, for exactly its operation (consumeGrant).
func (c *Client) ConsumeGrant(ctx context.Context, accountID, grant string, op Operation) error {
	return c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/grants/consume", map[string]any{"grant": grant, "operation": op}, nil)
}

// Resync re-aligns a hardware card with two consecutive codes (resyncHardwareToken).
func (c *Client) Resync(ctx context.Context, accountID, code1, code2 string) (Resynced, error) {
	var out Resynced
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/resync", map[string]string{"code1": code1, "code2": code2}, &out)
	return out, err
}

// DeleteDevice unbinds a device with a step-up proof (deleteDevice).
func (c *Client) DeleteDevice(ctx context.Context, accountID, deviceID string, proof Proof) error {
	return c.do(ctx, http.MethodDelete, acct(accountID)+"/mfa/devices/"+url.PathEscape(deviceID), map[string]any{"proof": proof}, nil)
}

// CreateWebAuthnChallenge starts a security-key assertion for purpose
// (login, operation, step_up) (createWebAuthnChallenge).
func (c *Client) CreateWebAuthnChallenge(ctx context.Context, accountID, purpose string, op *Operation) (Challenge, error) {
	var out Challenge
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/webauthn/challenge", map[string]any{"purpose": purpose, "operation": op}, &out)
	return out, err
}

// RegenerateRecoveryCodes replaces the recovery codes (regenerateRecoveryCodes).
func (c *Client) RegenerateRecoveryCodes(ctx context.Context, accountID string, proof Proof) (RecoveryCodes, error) {
	var out RecoveryCodes
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/mfa/recovery-codes", map[string]any{"proof": proof}, &out)
	return out, err
}

// VerifyLoginProtection checks a login code by the account's method and
// returns it: security_center or mfa (verifyLoginProtection).
func (c *Client) VerifyLoginProtection(ctx context.Context, accountID, code string) (string, error) {
	var out struct {
		Method string `json:"method"`
	}
	err := c.do(ctx, http.MethodPost, acct(accountID)+"/login-protection/verify", map[string]string{"code": code}, &out)
	return out.Method, err
}

// do sends one request and decodes the answer into out (*[]byte takes the
// raw body). A 4xx or 5xx is returned as *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(dropNil(in))
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return answerError(resp, raw)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = raw
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("mfaflow: %s %s: answer of type %q, want JSON", method, path, mt)
	}
	return json.Unmarshal(raw, out)
}

// answerError reads the document's error body of a refusal.
func answerError(resp *http.Response, raw []byte) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Field = body.Error.Code, body.Error.Message, body.Error.Field
	} else {
		e.Code, e.Message = "unexpected_answer", http.StatusText(resp.StatusCode)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// dropNil removes the nil pointers of a map body, so optional fields that
// are not given are not sent as null.
func dropNil(in any) any {
	m, ok := in.(map[string]any)
	if !ok {
		return in
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case *Proof:
			if x == nil {
				continue
			}
		case *Operation:
			if x == nil {
				continue
			}
		}
		out[k] = v
	}
	return out
}

package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

var (
	codePattern    = regexp.MustCompile(`^[0-9]{6}([0-9]{2})?$`)
	smsCodePattern = regexp.MustCompile(`^[0-9]{6}$`)
	serialPattern  = regexp.MustCompile(`^[A-Za-z0-9-]{4,32}$`)
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
)

// checkCode refuses a code that is not 6 or 8 digits before it costs anything.
func checkCode(field, code string) error {
	if !codePattern.MatchString(code) {
		return invalidField(field, "must be the 6-digit (or 8-digit) code")
	}
	return nil
}

// validCodes checks codes given as field, value pairs; on the first bad one
// it writes the error and reports false.
func (s *Server) validCodes(c *gin.Context, fieldValues ...string) bool {
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if err := checkCode(fieldValues[i], fieldValues[i+1]); err != nil {
			fail(c, s.log, err)
			return false
		}
	}
	return true
}

func caller(c *gin.Context) console.Caller {
	return console.Caller{Actor: "console", RemoteIP: c.ClientIP()}
}

// deviceView is a device as the console sees it.
type deviceView struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Name       string     `json:"name,omitempty"`
	Serial     string     `json:"serial,omitempty"`
	Model      string     `json:"model,omitempty"`  // webauthn: the authenticator model, when known
	AAGUID     string     `json:"aaguid,omitempty"` // webauthn: the model's AAGUID, when the key gives one
	BoundAt    time.Time  `json:"bound_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func viewDevice(d store.Device) deviceView {
	v := deviceView{ID: d.ID, Type: string(d.Type), Serial: d.Serial, BoundAt: d.BoundAt.UTC()}
	if d.Type == store.WebAuthn {
		v.Name = d.Name
	}
	if !d.LastUsedAt.IsZero() {
		t := d.LastUsedAt.UTC()
		v.LastUsedAt = &t
	}
	return v
}

func protectionView(p store.Protection) gin.H {
	return gin.H{"login": p.Login, "operation": p.Operation}
}

// bindingError maps the BindDevice workflow's failures to HTTP answers.
func bindingError(err error) error {
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return errorf(http.StatusConflict, "binding_in_progress", "a binding is already in progress for this account; finish it or wait for it to expire")
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return errorf(http.StatusNotFound, "binding_not_found", "no such binding in progress")
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		var unavailable *serviceerror.Unavailable
		var dl *serviceerror.DeadlineExceeded
		// WorkflowNotReady: the workflow's task is being retried (its worker
		// died); queries and updates work again once a worker picks it up.
		var notReady *serviceerror.WorkflowNotReady
		// Canceled: the server dropped the call (a query whose worker died
		// answers "context canceled"); a client that left sees nothing.
		var canceled *serviceerror.Canceled
		// NamespaceNotFound and NamespaceUnavailable: a frontend that has
		// not loaded the namespace yet (a restart, a loaded machine) says
		// so for a moment; ResourceExhausted is its rate limiting.
		var nsNotFound *serviceerror.NamespaceNotFound
		var nsUnavailable *serviceerror.NamespaceUnavailable
		var exhausted *serviceerror.ResourceExhausted
		if errors.As(err, &nsNotFound) || errors.As(err, &nsUnavailable) || errors.As(err, &exhausted) ||
			errors.As(err, &unavailable) || errors.As(err, &dl) || errors.As(err, &notReady) || errors.As(err, &canceled) ||
			errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return errorf(http.StatusServiceUnavailable, "unavailable", "the workflow service is unavailable; try again shortly")
		}
		return err
	}
	switch app.Type() {
	case workflows.ErrTypeInvalidCode:
		e := errorf(http.StatusUnauthorized, "invalid_code", "the code is not valid")
		return e
	case workflows.ErrTypeMalformed:
		return errorf(http.StatusBadRequest, "invalid_field", "the input is malformed")
	case workflows.ErrTypeLocked:
		e := errorf(http.StatusTooManyRequests, "locked", "too many wrong codes; try again later")
		var secs int
		if app.HasDetails() && app.Details(&secs) == nil && secs > 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
		return e
	case workflows.ErrTypeReplayed:
		return errorf(http.StatusUnauthorized, "code_reused", "this code was already used; wait for the next one")
	case workflows.ErrTypeNotConsecutive:
		return errorf(http.StatusUnprocessableEntity, "codes_not_consecutive", "enter two consecutive codes from the app")
	case workflows.ErrTypeSerialUnknown:
		return errorf(http.StatusUnprocessableEntity, "serial_unknown", "no token card with this serial number")
	case workflows.ErrTypeSerialUnavailable:
		return errorf(http.StatusConflict, "serial_unavailable", "this token card cannot be bound")
	case workflows.ErrTypeTooManyDevices:
		return errorf(http.StatusConflict, "too_many_devices", "the account has the maximum number of MFA devices")
	case workflows.ErrTypeWrongState:
		return errorf(http.StatusConflict, "wrong_state", "the binding is not at this step")
	case workflows.ErrTypeExpired:
		return errorf(http.StatusGone, "binding_expired", "the binding expired; start again")
	case workflows.ErrTypeSMSExhausted:
		return errorf(http.StatusGone, "binding_failed", "too many wrong SMS codes; start again")
	case workflows.ErrTypeNoPhone:
		return errorf(http.StatusUnprocessableEntity, "no_bound_phone", "the account has no bound phone to send the code to")
	case workflows.ErrTypeNoAccount:
		return errorf(http.StatusNotFound, "not_found", "no such account")
	case workflows.ErrTypeStepUpRequired:
		return console.ErrStepUpRequired
	case workflows.ErrTypeCredentialRefused:
		return errorf(http.StatusUnprocessableEntity, "credential_refused", "the security key's answer could not be verified; start the binding again")
	case workflows.ErrTypeAppealOpen:
		return console.ErrAppealOpen
	case workflows.ErrTypeUnavailable:
		return errorf(http.StatusServiceUnavailable, "unavailable", "a dependency is unavailable; try again shortly")
	}
	return err
}

func newBindingID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "bnd_" + base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) handleCreateBinding() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			DeviceType string     `json:"device_type"`
			Proof      *proofBody `json:"proof"`
		}
		if !s.decode(c, &req) {
			return
		}
		switch req.DeviceType {
		case workflows.DeviceVirtual, workflows.DeviceHardware:
		case workflows.DeviceWebAuthn:
			if s.deps.ConsoleService.WebAuthn == nil {
				fail(c, s.log, console.ErrWebAuthnOff)
				return
			}
		default:
			fail(c, s.log, invalidField("device_type", `must be "virtual", "hardware" or "webauthn"`))
			return
		}
		proof, err := stepUpProof("", req.Proof)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		// The factor-set rule comes before the workflow starts, so a
		// binding refused for want of a proof sends no SMS and tells
		// nothing (SPEC §6a). Every start needs it, a resumed binding too:
		// whoever holds the bound phone alone must never reach the SMS step
		// of an account that has a device.
		up, err := s.deps.ConsoleService.StepUp(c.Request.Context(), caller(c), accountID, proof, "device.bind")
		if err != nil {
			fail(c, s.log, err)
			return
		}
		in := workflows.BindDeviceInput{AccountID: accountID, DeviceType: req.DeviceType, BindingID: newBindingID(), RequestedBy: "console", RemoteIP: c.ClientIP(),
			StepUp: up.Method, StepUpDevice: up.DeviceID}
		st, err := startWithUpdate[workflows.BindingState](c.Request.Context(), s.deps.Temporal, workflows.BindWorkflowID(accountID),
			enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, "BindDevice", in, workflows.UpdateBegin)
		if err != nil {
			fail(c, s.log, bindingError(err))
			return
		}
		c.JSON(http.StatusCreated, gin.H{"binding_id": st.BindingID, "status": st.Status, "device_type": st.DeviceType, "expires_at": st.ExpiresAt.UTC()})
	}
}

// bindingUpdate sends an update to the account's running binding.
func (s *Server) bindingUpdate(c *gin.Context, accountID, name string, arg any) (workflows.BindingState, error) {
	st, err := runUpdate[workflows.BindingState](c.Request.Context(), s.deps.Temporal, workflows.BindWorkflowID(accountID), name, arg)
	return st, bindingErrorOrNil(err)
}

func bindingErrorOrNil(err error) error {
	if err == nil {
		return nil
	}
	return bindingError(err)
}

func bindingParams(c *gin.Context) (string, string, error) {
	accountID, err := accountID(c)
	if err != nil {
		return "", "", err
	}
	bid := c.Param("binding_id")
	if !idPattern.MatchString(bid) {
		return "", "", errorf(http.StatusNotFound, "binding_not_found", "no such binding in progress")
	}
	return accountID, bid, nil
}

// pendingSecret opens the secret of a binding's pending virtual device, to
// show it once (key, otpauth URI, QR). It is refused once the device is bound.
func (s *Server) pendingSecret(ctx context.Context, st workflows.BindingState) (mfa.Secret, string, error) {
	if st.DeviceID == "" {
		return nil, "", errorf(http.StatusConflict, "wrong_state", "the binding has no app key at this step")
	}
	d, err := s.deps.Store.GetDevice(ctx, st.DeviceID)
	if err != nil {
		return nil, "", err
	}
	if d.Status != store.DevicePending || d.AccountID != st.AccountID {
		return nil, "", errorf(http.StatusConflict, "wrong_state", "the key is shown only while the binding waits for the app's codes")
	}
	secret, err := inventory.OpenSecret(ctx, s.deps.Store, s.deps.Keys, store.SealedDevices, d.ID, d.Secret)
	if err != nil {
		return nil, "", err
	}
	p, err := mfa.ParseAlgorithm(d.Algorithm)
	if err != nil {
		return nil, "", err
	}
	uri := mfa.KeyURI(s.issuer(), st.AccountID, secret, mfa.Params{Algorithm: p, Digits: d.Digits, Period: time.Duration(d.PeriodSeconds) * time.Second})
	return secret, uri, nil
}

func (s *Server) issuer() string {
	if s.deps.Issuer != "" {
		return s.deps.Issuer
	}
	return "mfaflow"
}

func (s *Server) handleBindingSMSCode() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, bid, err := bindingParams(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		var req struct {
			Code string `json:"code"`
		}
		if !s.decode(c, &req) {
			return
		}
		if !smsCodePattern.MatchString(req.Code) {
			fail(c, s.log, invalidField("code", "must be the 6-digit SMS code"))
			return
		}
		st, err := s.bindingUpdate(c, accountID, workflows.UpdateSMSCode, workflows.BindSMSCodeInput{BindingID: bid, Code: req.Code})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if st.Status == workflows.BindingAwaitingWebAuthn {
			c.JSON(http.StatusOK, gin.H{"binding_id": st.BindingID, "status": st.Status, "expires_at": st.ExpiresAt.UTC(),
				"creation_options": json.RawMessage(st.CreationOptions)})
			return
		}
		if st.Status != workflows.BindingAwaitingDeviceCodes {
			c.JSON(http.StatusOK, gin.H{"binding_id": st.BindingID, "status": st.Status, "expires_at": st.ExpiresAt.UTC()})
			return
		}
		secret, uri, err := s.pendingSecret(c.Request.Context(), st)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"binding_id": st.BindingID, "status": st.Status, "expires_at": st.ExpiresAt.UTC(),
			"secret": mfa.EncodeSecret(secret), "otpauth_uri": uri,
			"qr_url": c.Request.URL.Path[:len(c.Request.URL.Path)-len("sms-code")] + "qr.png"})
	}
}

func (s *Server) handleBindingQR() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, bid, err := bindingParams(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		st, err := runQuery[workflows.BindingState](c.Request.Context(), s.deps.Temporal, workflows.BindWorkflowID(accountID), workflows.QueryBindingStatus)
		if err != nil {
			fail(c, s.log, bindingError(err))
			return
		}
		if st.BindingID != bid {
			fail(c, s.log, errorf(http.StatusNotFound, "binding_not_found", "no such binding in progress"))
			return
		}
		_, uri, err := s.pendingSecret(c.Request.Context(), st)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		png, err := mfa.QRPNG(uri, 256)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.Data(http.StatusOK, "image/png", png)
	}
}

type protectionBody struct {
	Login     bool `json:"login"`
	Operation bool `json:"operation"`
}

func (s *Server) handleBindingConfirm() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, bid, err := bindingParams(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		var req struct {
			Code1      string          `json:"code1"`
			Code2      string          `json:"code2"`
			Serial     string          `json:"serial"`
			Code       string          `json:"code"`
			Credential json.RawMessage `json:"credential"`
			Name       string          `json:"name"`
			Protection protectionBody  `json:"protection"`
		}
		if !s.decode(c, &req) {
			return
		}
		in := workflows.BindConfirmInput{BindingID: bid, Code1: req.Code1, Code2: req.Code2, Serial: req.Serial, Code: req.Code,
			Protection: workflows.Protection{Login: req.Protection.Login, Operation: req.Protection.Operation}}
		if len(req.Credential) > 0 {
			var probe map[string]any
			if json.Unmarshal(req.Credential, &probe) != nil {
				fail(c, s.log, invalidField("credential", "the PublicKeyCredential JSON from navigator.credentials.create"))
				return
			}
			if len(req.Name) > 64 {
				fail(c, s.log, invalidField("name", "at most 64 characters"))
				return
			}
			in.Credential, in.Name = string(req.Credential), req.Name
		} else if req.Serial != "" || req.Code != "" {
			if !serialPattern.MatchString(req.Serial) {
				fail(c, s.log, invalidField("serial", "the serial number from the back of the card (4-32 letters, digits or '-')"))
				return
			}
			if !s.validCodes(c, "code", req.Code) {
				return
			}
		} else {
			if !s.validCodes(c, "code1", req.Code1, "code2", req.Code2) {
				return
			}
		}
		st, err := s.bindingUpdate(c, accountID, workflows.UpdateConfirm, in)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		d, err := s.deps.Store.GetDevice(c.Request.Context(), st.DeviceID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		p, err := s.deps.Store.GetProtection(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		body := gin.H{"binding_id": st.BindingID, "status": st.Status, "device": viewDevice(d), "protection": protectionView(p)}
		// The account's first set of recovery codes comes with the binding
		// that leaves it with a device and no codes, shown this once.
		codes, err := s.deps.ConsoleService.InitRecoveryCodes(c.Request.Context(), caller(c), accountID)
		if err != nil {
			s.log.WarnContext(c.Request.Context(), "recovery codes not made after a binding", "account_id", accountID, "err", err)
		}
		if codes != nil {
			body["recovery_codes"] = codes
			c.Header("Cache-Control", "no-store")
		}
		c.JSON(http.StatusOK, body)
	}
}

func (s *Server) handleGetMFA() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		devs, p, err := s.deps.ConsoleService.Devices(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		creds, err := s.deps.Store.ListWebAuthnCredentials(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		aaguids := map[string][]byte{}
		for _, k := range creds {
			aaguids[k.DeviceID] = k.AAGUID
		}
		out := make([]deviceView, 0, len(devs))
		for _, d := range devs {
			v := viewDevice(d)
			v.AAGUID, v.Model = mfa.AuthenticatorModel(aaguids[d.ID])
			out = append(out, v)
		}
		left, err := s.deps.ConsoleService.RecoveryCodesRemaining(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"account_id": accountID, "devices": out, "protection": protectionView(p), "recovery_codes_remaining": left})
	}
}

func (s *Server) handlePutProtection() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Login     *bool      `json:"login"`
			Operation *bool      `json:"operation"`
			Code      string     `json:"code"`
			Proof     *proofBody `json:"proof"`
		}
		if !s.decode(c, &req) {
			return
		}
		if req.Login == nil {
			fail(c, s.log, invalidField("login", "required: true or false"))
			return
		}
		if req.Operation == nil {
			fail(c, s.log, invalidField("operation", "required: true or false"))
			return
		}
		proof, err := stepUpProof(req.Code, req.Proof)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		p, err := s.deps.ConsoleService.SetProtection(c.Request.Context(), caller(c), accountID, proof, store.Protection{Login: *req.Login, Operation: *req.Operation})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"protection": protectionView(p)})
	}
}

type operationBody struct {
	Action   string `json:"action"`
	Resource string `json:"resource"`
}

// checkPurpose checks a check's purpose (login or operation, and step_up
// when stepUp) and, for an operation, its action and resource.
func checkPurpose(purpose string, op *operationBody, stepUp bool) (console.Operation, error) {
	switch {
	case purpose == console.PurposeLogin, stepUp && purpose == console.PurposeStepUp:
		return console.Operation{}, nil
	case purpose == console.PurposeOperation:
		if op == nil {
			return console.Operation{}, invalidField("operation", "required for purpose operation")
		}
		if err := op.check(); err != nil {
			return console.Operation{}, err
		}
		return console.Operation{Action: op.Action, Resource: op.Resource}, nil
	case stepUp:
		return console.Operation{}, invalidField("purpose", `must be "login", "operation" or "step_up"`)
	}
	return console.Operation{}, invalidField("purpose", `must be "login" or "operation"`)
}

func (o operationBody) check() error {
	if o.Action == "" || len(o.Action) > 64 {
		return invalidField("operation.action", "required, at most 64 characters")
	}
	if o.Resource == "" || len(o.Resource) > 256 {
		return invalidField("operation.resource", "required, at most 256 characters")
	}
	return nil
}

func (s *Server) handleVerify() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Code         string         `json:"code"`
			RecoveryCode string         `json:"recovery_code"`
			WebAuthn     *assertionBody `json:"webauthn"`
			Purpose      string         `json:"purpose"`
			Operation    *operationBody `json:"operation"`
		}
		if !s.decode(c, &req) {
			return
		}
		op, err := checkPurpose(req.Purpose, req.Operation, false)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if req.RecoveryCode != "" {
			s.verifyRecoveryCode(c, accountID, req.Code, req.RecoveryCode, req.Purpose)
			return
		}
		if req.WebAuthn != nil {
			if req.Code != "" {
				fail(c, s.log, invalidField("webauthn", "give either a code or a webauthn assertion, not both"))
				return
			}
			a, err := req.WebAuthn.assertion("webauthn")
			if err != nil {
				fail(c, s.log, err)
				return
			}
			res, err := s.deps.ConsoleService.VerifyWebAuthn(c.Request.Context(), caller(c), accountID, req.Purpose, op, a)
			if err != nil {
				fail(c, s.log, err)
				return
			}
			s.verified(c, res)
			return
		}
		if !s.validCodes(c, "code", req.Code) {
			return
		}
		res, err := s.deps.ConsoleService.Verify(c.Request.Context(), caller(c), accountID, req.Code, req.Purpose, op)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		s.verified(c, res)
	}
}

func (s *Server) handleConsumeGrant() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Grant     string         `json:"grant"`
			Operation *operationBody `json:"operation"`
		}
		if !s.decode(c, &req) {
			return
		}
		if req.Grant == "" || len(req.Grant) > 128 {
			fail(c, s.log, invalidField("grant", "required"))
			return
		}
		if req.Operation == nil {
			fail(c, s.log, invalidField("operation", "required"))
			return
		}
		if err := req.Operation.check(); err != nil {
			fail(c, s.log, err)
			return
		}
		g, err := s.deps.ConsoleService.ConsumeGrant(c.Request.Context(), caller(c), accountID, req.Grant, console.Operation{Action: req.Operation.Action, Resource: req.Operation.Resource})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"consumed": true, "operation": gin.H{"action": g.Action, "resource": g.Resource}})
	}
}

func (s *Server) handleResync() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Code1 string `json:"code1"`
			Code2 string `json:"code2"`
		}
		if !s.decode(c, &req) {
			return
		}
		if !s.validCodes(c, "code1", req.Code1, "code2", req.Code2) {
			return
		}
		d, drift, err := s.deps.ConsoleService.Resync(c.Request.Context(), caller(c), accountID, req.Code1, req.Code2)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"resynced": true, "device": viewDevice(d), "drift_steps": drift})
	}
}

func (s *Server) handleDeleteDevice() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		deviceID := c.Param("device_id")
		if !idPattern.MatchString(deviceID) {
			fail(c, s.log, store.ErrNotFound)
			return
		}
		var req struct {
			Code  string     `json:"code"`
			Proof *proofBody `json:"proof"`
		}
		if !s.decode(c, &req) {
			return
		}
		proof, err := stepUpProof(req.Code, req.Proof)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if err := s.deps.ConsoleService.Unbind(c.Request.Context(), caller(c), accountID, deviceID, proof); err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"unbound": true, "device_id": deviceID})
	}
}

func (s *Server) handleLoginProtectionVerify() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, ok := s.accountParam(c)
		if !ok {
			return
		}
		var req struct {
			Code string `json:"code"`
		}
		if !s.decode(c, &req) {
			return
		}
		if !s.validCodes(c, "code", req.Code) {
			return
		}
		a, err := s.deps.Store.GetAccount(c.Request.Context(), accountID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if _, err := s.deps.ConsoleService.LoginVerify(c.Request.Context(), caller(c), accountID, req.Code); err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"verified": true, "method": a.LoginMethod})
	}
}

// verifyRecoveryCode answers a login verification made with a recovery
// code: it passes login protection once (SPEC §6b); an operation needs a
// device.
func (s *Server) verifyRecoveryCode(c *gin.Context, accountID, code, recoveryCode, purpose string) {
	if code != "" {
		fail(c, s.log, invalidField("recovery_code", "give either a code or a recovery_code, not both"))
		return
	}
	if purpose != console.PurposeLogin {
		fail(c, s.log, invalidField("recovery_code", "a recovery code passes login protection only; operations need a code of a device"))
		return
	}
	if _, err := mfa.NormalizeRecoveryCode(recoveryCode); err != nil {
		fail(c, s.log, invalidField("recovery_code", "a recovery code is 10 letters and digits, such as 7KQ4M-X2PRD"))
		return
	}
	left, err := s.deps.ConsoleService.VerifyRecoveryCode(c.Request.Context(), caller(c), accountID, recoveryCode)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"verified": true, "method": "recovery_code", "recovery_codes_remaining": left})
}

// verified answers a successful verification.
func (s *Server) verified(c *gin.Context, res console.VerifyResult) {
	body := gin.H{"verified": true, "device_id": res.DeviceID}
	if res.Grant != "" {
		body["grant"] = res.Grant
		body["expires_at"] = res.ExpiresAt.UTC()
	}
	c.JSON(http.StatusOK, body)
}

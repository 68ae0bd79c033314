package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/client"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// TestConsoleThroughClient drives the console's whole device life through
// the typed client (package client), on both databases, with every
// exchange validated against the served document by the stack's client:
// bind a virtual device (SMS code, key, QR, two consecutive codes), read
// the account, a wrong code (401 invalid_code without WWW-Authenticate), a
// login, an operation grant used once (a second use is grant_used, as a
// typed error), new recovery codes with a recovery code as proof, and the
// device removed with another.
func TestConsoleThroughClient(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStack(t, st, 1)
		const acct, phone = "e2e-client", "13800000071"
		s.putAccount(acct, phone, store.LoginMFA)
		ctx := context.Background()
		c := &client.Client{BaseURL: s.apis[0].URL, Key: consoleKey, HTTP: s.client}

		b, err := c.CreateBinding(ctx, acct, "virtual", nil)
		if err != nil || b.Status != "awaiting_sms_code" || b.DeviceType != "virtual" {
			t.Fatalf("CreateBinding = %+v, %v", b, err)
		}
		if _, err := c.CreateBinding(ctx, acct, "virtual", nil); !client.IsCode(err, "binding_in_progress") {
			t.Fatalf("a second binding: %v, want binding_in_progress", err)
		}
		b, err = c.SubmitBindingSMSCode(ctx, acct, b.BindingID, s.smsCode(phone))
		if err != nil || b.Status != "awaiting_device_codes" || b.Secret == "" {
			t.Fatalf("SubmitBindingSMSCode = %+v, %v", b, err)
		}
		png, err := c.BindingQR(ctx, acct, b.BindingID)
		if err != nil || len(png) < 8 || string(png[:4]) != "\x89PNG" {
			t.Fatalf("BindingQR = %d bytes, %v", len(png), err)
		}
		secret, err := mfa.DecodeSecret(b.Secret)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		bound, err := c.ConfirmBinding(ctx, acct, b.BindingID, client.ConfirmRequest{
			Code1: mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), Code2: mfa.TOTP(secret, now, mfa.Params{}),
			Protection: &client.Protection{Login: true, Operation: true}})
		if err != nil || bound.Status != "bound" || bound.Device.Type != "virtual" || len(bound.RecoveryCodes) != 10 {
			t.Fatalf("ConfirmBinding = %+v, %v", bound, err)
		}
		m, err := c.MFA(ctx, acct)
		if err != nil || len(m.Devices) != 1 || !m.Protection.Login || m.RecoveryCodesRemaining != 10 {
			t.Fatalf("MFA = %+v, %v", m, err)
		}

		wrong := mfa.TOTP(secret, now.Add(-10*time.Minute), mfa.Params{})
		_, err = c.Verify(ctx, acct, client.VerifyRequest{Code: wrong, Purpose: "login"})
		var e *client.Error
		if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code != "invalid_code" {
			t.Fatalf("a wrong code: %v, want 401 invalid_code", err)
		}
		waitNextStep(t, now)
		now = time.Now()
		if v, err := c.Verify(ctx, acct, client.VerifyRequest{Code: mfa.TOTP(secret, now, mfa.Params{}), Purpose: "login"}); err != nil || !v.Verified || v.Grant != "" {
			t.Fatalf("login = %+v, %v", v, err)
		}
		op := client.Operation{Action: "cvm:DeleteInstance", Resource: "vm-client"}
		v, err := c.Verify(ctx, acct, client.VerifyRequest{Code: mfa.TOTP(secret, now.Add(30*time.Second), mfa.Params{}), Purpose: "operation", Operation: &op})
		if err != nil || v.Grant == "" {
			t.Fatalf("operation = %+v, %v", v, err)
		}
		if err := c.ConsumeGrant(ctx, acct, v.Grant, op); err != nil {
			t.Fatalf("ConsumeGrant: %v", err)
		}
		if err := c.ConsumeGrant(ctx, acct, v.Grant, op); !client.IsCode(err, "grant_used") {
			t.Fatalf("a second use: %v, want grant_used", err)
		}

		rc, err := c.RegenerateRecoveryCodes(ctx, acct, client.Proof{RecoveryCode: bound.RecoveryCodes[0]})
		if err != nil || len(rc.RecoveryCodes) != 10 {
			t.Fatalf("RegenerateRecoveryCodes = %+v, %v", rc, err)
		}
		if err := c.DeleteDevice(ctx, acct, bound.Device.ID, client.Proof{RecoveryCode: bound.RecoveryCodes[1]}); !client.IsCode(err, "invalid_code") {
			t.Fatalf("a code of the replaced set: %v, want invalid_code", err)
		}
		if err := c.DeleteDevice(ctx, acct, bound.Device.ID, client.Proof{RecoveryCode: rc.RecoveryCodes[0]}); err != nil {
			t.Fatalf("DeleteDevice: %v", err)
		}
		if m, err := c.MFA(ctx, acct); err != nil || len(m.Devices) != 0 {
			t.Fatalf("MFA after the removal = %+v, %v", m, err)
		}
	})
}

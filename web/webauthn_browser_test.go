package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/mfaflow/mfaflow/store"
)

// cdpCall runs one DevTools command in the tab.
func cdpCall[P, R any](b *browser, what string, cmd cdp.Command[P, R], params P) R {
	b.t.Helper()
	var out R
	b.do(what, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		var err error
		out, err = chromedp.Call(ctx, cmd, params)
		return err
	}))
	return out
}

// plugKey adds a virtual authenticator to the tab as issue 11 asks: CTAP2
// over USB with resident keys and user verification, always verified, the
// touch simulated. creds (saved from another authenticator) are put on it,
// as if the same key were plugged in again.
func plugKey(b *browser, creds ...*webauthn.Credential) webauthn.AuthenticatorID {
	b.t.Helper()
	r := cdpCall(b, "add a virtual authenticator", webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportUsb, HasResidentKey: true, HasUserVerification: true,
			IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
	for _, c := range creds {
		putCredential(b, r.AuthenticatorID, c, c.SignCount)
	}
	return r.AuthenticatorID
}

// putCredential puts a copy of c with the signature counter n on the
// authenticator: the key material, its RP and user, its flags.
func putCredential(b *browser, id webauthn.AuthenticatorID, c *webauthn.Credential, n float64) {
	b.t.Helper()
	cdpCall(b, "put a credential on the authenticator", addCredential, addCredentialParams{AuthenticatorID: id, Credential: credentialToAdd{
		CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: c.RpID, PrivateKey: c.PrivateKey,
		UserHandle: c.UserHandle, SignCount: n, BackupEligibility: c.BackupEligibility, BackupState: c.BackupState,
	}})
}

// addCredential is WebAuthn.addCredential without the CMTG members that
// cdproto's Credential always sends (generateCmtgKeyOnNextOperation), which
// Chromium refuses for an authenticator without the extension.
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      credentialToAdd          `json:"credential"`
}

type credentialToAdd struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
	BackupEligibility    bool    `json:"backupEligibility"`
	BackupState          bool    `json:"backupState"`
}

func unplugKey(b *browser, id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	creds := keyCredentials(b, id)
	cdpCall(b, "remove the virtual authenticator", webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id})
	return creds
}

func keyCredentials(b *browser, id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	return cdpCall(b, "read the authenticator's credentials", webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id}).Credentials
}

// setSignCount sets the signature counter of the authenticator's
// credential, by taking it off and putting it back with the new count.
func setSignCount(b *browser, id webauthn.AuthenticatorID, credID []byte, n float64) {
	b.t.Helper()
	c := cdpCall(b, "read the credential", webauthn.GetCredential, webauthn.GetCredentialParams{AuthenticatorID: id, CredentialID: credID}).Credential
	cdpCall(b, "take the credential off", webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: id, CredentialID: credID})
	putCredential(b, id, c, n)
}

// evalAwait runs an async expression in the page and waits for its value.
func evalAwait[T any](b *browser, what, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v (status line: %q)", what, err, b.statusNoFail())
	}
	return v
}

// apiAnswer is the console API's answer to a request the page sent.
type apiAnswer struct {
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
}

func (a apiAnswer) code() string {
	if e, ok := a.Body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

// pageAPI sends a request to the console API with fetch from the page, with
// the page's dev console key, as the page's own script does.
func (b *browser) pageAPI(method, path string, body any) apiAnswer {
	b.t.Helper()
	payload := "undefined"
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		payload = jsString(string(raw))
	}
	js := fmt.Sprintf(`(async () => {
		const key = document.getElementById("console").dataset.apiKey;
		const r = await fetch(%s, {method: %s, cache: "no-store", body: %s,
			headers: {Authorization: "Bearer " + key, "Content-Type": "application/json", Accept: "application/json"}});
		let j = null;
		try { j = await r.json(); } catch (e) { j = null; }
		return JSON.stringify({status: r.status, body: j});
	})()`, jsString(path), jsString(method), payload)
	var a apiAnswer
	if err := json.Unmarshal([]byte(evalAwait[string](b, method+" "+path+" from the page", js)), &a); err != nil {
		b.t.Fatalf("%s %s from the page: %v", method, path, err)
	}
	return a
}

// keyAnswer is a real assertion made in the page: the challenge it
// answers and the PublicKeyCredential JSON, as the page sends them.
type keyAnswer struct {
	ChallengeID string          `json:"challenge_id"`
	Credential  json.RawMessage `json:"credential"`
}

// pageAssertion asks the API of the page's origin for a challenge of
// account and purpose and has the authenticator answer it through
// navigator.credentials.get (webauthn.js converts the options and the
// answer). With allow, the browser is asked for that credential (base64url
// id) instead of the ones the server allows.
func (b *browser) pageAssertion(account, purpose string, op map[string]string, allow string) keyAnswer {
	b.t.Helper()
	body := map[string]any{"purpose": purpose}
	if op != nil {
		body["operation"] = op
	}
	raw, _ := json.Marshal(body)
	js := fmt.Sprintf(`(async () => {
		const key = document.getElementById("console").dataset.apiKey;
		const r = await fetch("/v1/accounts/" + encodeURIComponent(%s) + "/mfa/webauthn/challenge", {method: "POST", cache: "no-store", body: %s,
			headers: {Authorization: "Bearer " + key, "Content-Type": "application/json", Accept: "application/json"}});
		const ch = await r.json();
		if (r.status !== 201) {
			throw new Error("challenge: " + r.status + " " + JSON.stringify(ch));
		}
		const allow = %s;
		if (allow) {
			ch.request_options.publicKey.allowCredentials = [{type: "public-key", id: allow}];
		}
		const credential = await window.mfaflowWebAuthn.get(ch.request_options);
		return JSON.stringify({challenge_id: ch.challenge_id, credential: credential});
	})()`, jsString(account), jsString(string(raw)), jsString(allow))
	var k keyAnswer
	if err := json.Unmarshal([]byte(evalAwait[string](b, "an assertion in the page", js)), &k); err != nil {
		b.t.Fatal(err)
	}
	if k.ChallengeID == "" || len(k.Credential) == 0 {
		b.t.Fatalf("the page made no assertion")
	}
	return k
}

// verifyBody is the body of POST …/mfa/verify with a key's answer.
func verifyBody(k keyAnswer, purpose string, op map[string]string) map[string]any {
	body := map[string]any{"webauthn": k, "purpose": purpose}
	if op != nil {
		body["operation"] = op
	}
	return body
}

// credentialJSON is the part of a PublicKeyCredential JSON the test reads
// and changes.
type credentialJSON map[string]any

func parseCredential(t *testing.T, raw json.RawMessage) credentialJSON {
	t.Helper()
	var c credentialJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c credentialJSON) field(t *testing.T, name string) []byte {
	t.Helper()
	s, _ := c["response"].(map[string]any)[name].(string)
	v, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("response.%s is not base64url: %v", name, err)
	}
	return v
}

func (c credentialJSON) set(name string, v []byte) {
	c["response"].(map[string]any)[name] = base64.RawURLEncoding.EncodeToString(v)
}

func (c credentialJSON) raw(t *testing.T) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// clientData is the assertion's clientDataJSON.
func (c credentialJSON) clientData(t *testing.T) map[string]any {
	t.Helper()
	var cd map[string]any
	if err := json.Unmarshal(c.field(t, "clientDataJSON"), &cd); err != nil {
		t.Fatal(err)
	}
	return cd
}

// auditCount counts the account's audit entries of action and outcome
// (and, when method is set, that method).
func (s *browserStack) auditCount(t *testing.T, account, action, outcome, method string) int {
	t.Helper()
	entries, err := s.st.ListAudit(context.Background(), store.AuditFilter{AccountID: account, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Action == action && e.Outcome == outcome && (method == "" || e.Details["method"] == method) {
			n++
		}
	}
	return n
}

func (s *browserStack) outboxKinds(t *testing.T, to string) map[string]int {
	t.Helper()
	msgs, err := s.st.ListOutbox(context.Background(), to, 500)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, m := range msgs {
		kinds[m.Kind]++
	}
	return kinds
}

func (s *browserStack) keysOf(t *testing.T, account string) []store.WebAuthnCredential {
	t.Helper()
	creds, err := s.st.ListWebAuthnCredentials(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// bindKeyInPage goes from the SMS step to a bound key: the SMS code, the
// key's name and scopes, and the browser's registration ceremony.
func (b *browser) bindKeyInPage(code, name string, login, operation bool) {
	b.t.Helper()
	b.typeInto("sms-code", code)
	b.click("sms-submit")
	b.visible("webauthn-step")
	b.waitText("status", "Identity verified. Name the key")
	if f := eval[string](b, `document.activeElement ? document.activeElement.id : ""`); f != "wa-name" {
		b.t.Errorf("focus is on #%s at the key step, want its name", f)
	}
	b.typeInto("wa-name", name)
	if login {
		b.tick("wa-scope-login")
	}
	if operation {
		b.tick("wa-scope-operation")
	}
}

// TestWebAuthnInBrowser drives security keys on the console page in
// headless Chromium with virtual authenticators (DevTools WebAuthn domain)
// against the whole stack, on http://localhost:<port> (the relying party's
// RP ID is localhost): a key binds as the account's first device, passes
// the login check and buys the grant that deletes the VM; a cancelled
// prompt is told as such; a second key binds with the first as the step-up,
// which also makes a new set of recovery codes;
// on 127.0.0.1 the page explains that keys need localhost; tampered,
// replayed, another account's and another origin's assertions are refused;
// and a counter set back on the authenticator is refused as a possible
// clone and told to the owner.
func TestWebAuthnInBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startBrowserStack(t)
	defer b.checkFaults()
	const acct = "demo-personal"
	phone := demoPersonal.BoundPhone
	base := "/v1/accounts/" + acct + "/mfa"

	cdpCall(b, "enable the WebAuthn domain", webauthn.Enable, webauthn.EnableParams{})
	first := plugKey(b)

	// 1. The page on localhost; no key yet, so no key choices.
	b.do("open the console on localhost", chromedp.Navigate(s.localURL+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	if eval[bool](b, `!document.getElementById("webauthn-origin").hidden`) {
		t.Error("the page on localhost says security keys need another address")
	}
	if eval[bool](b, `[...document.querySelectorAll(".webauthn-only")].some(e => !e.hidden)`) {
		t.Error("the page offers a security key before the account has one")
	}

	// 2. Bind a security key as the first device: SMS check, name, scopes,
	// the browser's registration ceremony.
	b.click("bind-webauthn")
	b.waitText("status", "SMS code sent to 138****8000")
	b.bindKeyInPage(s.smsCode(t, phone), "YubiKey 5", true, true)
	b.screenshot("wa-01-key-step")
	b.fitsNarrow("wa-02-key-step-375px")
	b.click("wa-register")
	b.waitText("bind-result", "Bound: Security key or passkey “YubiKey 5”")
	b.waitText("bind-result", "Login protection on, operation protection on.")
	b.waitText("protection", "Login protection: on · Operation protection: on")
	b.waitText("devices", "Security key or passkey “YubiKey 5”")
	b.shownCodes() // the account's first device: its recovery codes show once
	b.click("codes-done")

	// The API and the store have the authenticator's credential; the page
	// lists it with its model as the API tells it.
	onKey := keyCredentials(b, first)
	stored := s.keysOf(t, acct)
	if len(onKey) != 1 || len(stored) != 1 || !bytes.Equal(onKey[0].CredentialID, stored[0].CredentialID) {
		t.Fatalf("authenticator has %d credentials, the store %d keys, or their ids differ", len(onKey), len(stored))
	}
	if !stored[0].UserVerified {
		t.Error("the stored key is not marked user-verified although the authenticator verifies")
	}
	personalCred := base64.RawURLEncoding.EncodeToString(onKey[0].CredentialID)
	mfaState := b.pageAPI(http.MethodGet, base, nil)
	devs, _ := mfaState.Body["devices"].([]any)
	if mfaState.Status != http.StatusOK || len(devs) != 1 {
		t.Fatalf("GET mfa = %d %v", mfaState.Status, mfaState.Body)
	}
	dev := devs[0].(map[string]any)
	if dev["type"] != "webauthn" || dev["name"] != "YubiKey 5" {
		t.Fatalf("GET mfa lists %v", dev)
	}
	wantModel := "model not told by the key"
	if m, _ := dev["model"].(string); m != "" {
		wantModel = "model " + m
	} else if a, _ := dev["aaguid"].(string); a != "" {
		wantModel = "model AAGUID " + a
	}
	t.Logf("the virtual authenticator lists as: %s", wantModel)
	b.waitText("devices", wantModel)
	b.screenshot("wa-03-key-bound")
	b.fitsNarrow("wa-04-key-bound-375px")

	// 3. The login check with the key.
	b.visible("login-kind-webauthn")
	b.click("login-kind-webauthn")
	b.visible("login-webauthn-field")
	if eval[bool](b, `!document.getElementById("login-code-field").hidden || !document.getElementById("login-code").disabled`) {
		t.Error("the code input still shows or counts with the key chosen")
	}
	b.click("login-verify")
	b.waitText("login-result", "Login verified with your security key")
	b.waitText("status", "Login check passed.")
	if n := s.auditCount(t, acct, "mfa.verify.login", "ok", "webauthn"); n != 1 {
		t.Errorf("%d audited logins by key, want 1", n)
	}
	b.screenshot("wa-05-login-key")

	// 4. Delete VM vm-123 with a grant from the key; the grant works once.
	b.click("op-kind-webauthn")
	b.visible("op-webauthn-field")
	b.click("op-verify")
	b.waitText("op-result", "VM deleted: vm-123")
	b.waitText("status", "Operation verified and performed.")
	if n := s.auditCount(t, acct, "mfa.verify.operation", "ok", "webauthn"); n != 1 {
		t.Errorf("%d audited operations by key, want 1", n)
	}
	b.click("op-reuse")
	b.waitText("op-result", "Refused")
	b.waitText("op-result", "grant_used")
	b.screenshot("wa-06-vm-deleted")

	// 5. A key the browser cannot use here (none of the account's) ends in
	// NotAllowedError: the page says the request was cancelled or timed
	// out, and sends nothing.
	saved := unplugKey(b, first)
	blank := plugKey(b)
	failures := s.auditCount(t, acct, "mfa.verify.login", "invalid", "webauthn")
	b.click("login-verify")
	b.waitText("status", "cancelled or timed out (NotAllowedError)")
	if n := s.auditCount(t, acct, "mfa.verify.login", "invalid", "webauthn"); n != failures {
		t.Error("a cancelled prompt reached the server as a failed check")
	}
	b.screenshot("wa-07-cancelled")
	unplugKey(b, blank)
	first = plugKey(b, saved...)

	// 6. A second key, with the first as the step-up proof: the proof is
	// asked before any SMS, the first key answers it, the new key registers.
	smsBefore := s.smsCount(t, phone)
	b.click("bind-webauthn")
	b.visible("bind-proof-step")
	b.waitText("status", "This account already has an MFA device.")
	b.visible("bind-proof-kind-webauthn")
	b.click("bind-proof-kind-webauthn")
	b.visible("bind-proof-webauthn-help")
	b.screenshot("wa-08-step-up")
	b.click("bind-proof-submit")
	b.waitText("status", "SMS code sent to 138****8000")
	if n := s.auditCount(t, acct, "mfa.step_up", "ok", "webauthn"); n != 1 {
		t.Errorf("%d audited step-ups by key, want 1", n)
	}
	// The new key is another authenticator; the first is unplugged so the
	// browser registers on the new one.
	saved = unplugKey(b, first)
	second := plugKey(b)
	b.bindKeyInPage(s.nextSMSCode(t, phone, smsBefore), "Backup key", false, false)
	b.click("wa-register")
	b.waitText("bind-result", "Bound: Security key or passkey “Backup key”")
	b.waitText("status", "The MFA device is bound.")
	b.waitJS("two keys listed", `document.querySelectorAll("#devices li strong").length === 2`, 20*time.Second)
	b.waitText("devices", "“Backup key”")
	if eval[bool](b, `!document.getElementById("codes-panel").hidden`) {
		t.Error("the second binding showed recovery codes")
	}
	if got := s.keysOf(t, acct); len(got) != 2 {
		t.Fatalf("the store has %d keys, want 2", len(got))
	}
	b.screenshot("wa-09-second-key")
	unplugKey(b, second)
	first = plugKey(b, saved...)

	// A new set of recovery codes, with the key as the proof.
	b.click("recovery-new")
	b.visible("regen-step")
	b.visible("regen-proof-kind-webauthn")
	b.click("regen-proof-kind-webauthn")
	b.click("regen-submit")
	b.waitText("status", "A new set of recovery codes is made")
	b.shownCodes()
	b.click("codes-done")
	if n := s.auditCount(t, acct, "mfa.step_up", "ok", "webauthn"); n != 2 {
		t.Errorf("%d audited step-ups by key, want 2", n)
	}

	// 7. On 127.0.0.1 the page says keys need localhost and links there;
	// neither a login by key nor a key binding asks the server anything.
	b.do("open the console on 127.0.0.1", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	b.visible("webauthn-origin")
	b.waitText("webauthn-origin", "do not work on an IP address")
	if href := b.attr("webauthn-origin-link", "href"); href != s.localURL+"/console" {
		t.Errorf("the notice links to %q, want %s/console", href, s.localURL)
	}
	b.visible("login-kind-webauthn")
	b.click("login-kind-webauthn")
	b.click("login-verify")
	b.waitText("status", "open the console at "+s.localURL+"/console")
	smsBefore = s.smsCount(t, phone)
	b.click("bind-webauthn")
	b.waitText("status", "do not work on an IP address")
	if eval[bool](b, `!document.getElementById("bind-proof-step").hidden || !document.getElementById("sms-step").hidden`) {
		t.Error("a key binding started on 127.0.0.1")
	}
	if n := s.smsCount(t, phone); n != smsBefore {
		t.Error("a key binding on 127.0.0.1 sent an SMS")
	}
	b.screenshot("wa-10-ip-origin")
	b.fitsNarrow("wa-11-ip-origin-375px")

	// 8. Real assertions made in the page and sent again with changes.
	// Failures spend the failure budget (5 in a row lock), so a good login
	// follows every two refusals.
	b.do("back to localhost", chromedp.Navigate(s.localURL+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	login := func(what string) {
		t.Helper()
		if a := b.pageAPI(http.MethodPost, base+"/verify", verifyBody(b.pageAssertion(acct, "login", nil, ""), "login", nil)); a.Status != http.StatusOK {
			t.Fatalf("%s: a good login = %d %v", what, a.Status, a.Body)
		}
	}
	refused := func(what string, a apiAnswer) {
		t.Helper()
		if a.Status != http.StatusUnauthorized || a.code() != "invalid_code" {
			t.Errorf("%s = %d %v, want 401 invalid_code", what, a.Status, a.Body)
		}
	}

	// Tampered: one bit of the signature; or the origin in clientDataJSON
	// rewritten after signing.
	k := b.pageAssertion(acct, "login", nil, "")
	c := parseCredential(t, k.Credential)
	sig := c.field(t, "signature")
	sig[len(sig)-1] ^= 0x01
	c.set("signature", sig)
	refused("a tampered signature", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(keyAnswer{k.ChallengeID, c.raw(t)}, "login", nil)))
	k = b.pageAssertion(acct, "login", nil, "")
	c = parseCredential(t, k.Credential)
	cd := c.clientData(t)
	if cd["origin"] != s.localURL || cd["type"] != "webauthn.get" {
		t.Fatalf("clientDataJSON has origin %v and type %v", cd["origin"], cd["type"])
	}
	cd["origin"] = "http://127.0.0.1:" + strings.TrimPrefix(s.localURL, "http://localhost:")
	rewritten, _ := json.Marshal(cd)
	c.set("clientDataJSON", rewritten)
	refused("clientDataJSON with a rewritten origin", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(keyAnswer{k.ChallengeID, c.raw(t)}, "login", nil)))
	login("after the tampered ones")

	// Replayed: an accepted assertion again, and for a new challenge.
	k = b.pageAssertion(acct, "login", nil, "")
	if a := b.pageAPI(http.MethodPost, base+"/verify", verifyBody(k, "login", nil)); a.Status != http.StatusOK {
		t.Fatalf("the original assertion = %d %v", a.Status, a.Body)
	}
	refused("the same assertion again", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(k, "login", nil)))
	fresh := b.pageAssertion(acct, "login", nil, "")
	refused("the old assertion for a new challenge", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(keyAnswer{fresh.ChallengeID, k.Credential}, "login", nil)))
	login("after the replays")

	// Another account: demo-enterprise binds its own key on the same
	// authenticator (the page, as a user would).
	b.do("open demo-enterprise", chromedp.Navigate(s.localURL+"/console?account=demo-enterprise"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-enterprise loaded.")
	b.click("bind-webauthn")
	b.waitText("status", "SMS code sent to 137****7000")
	b.bindKeyInPage(s.smsCode(t, demoEnterprise.BoundPhone), "Ops key", true, false)
	b.click("wa-register")
	b.waitText("bind-result", "Bound: Security key or passkey “Ops key”")
	opsKeys := s.keysOf(t, demoEnterprise.ID)
	if len(opsKeys) != 1 {
		t.Fatalf("demo-enterprise has %d keys, want 1", len(opsKeys))
	}
	opsCred := base64.RawURLEncoding.EncodeToString(opsKeys[0].CredentialID)
	// Its challenge and answer, sent as demo-personal's.
	other := b.pageAssertion(demoEnterprise.ID, "login", nil, "")
	refused("another account's challenge and key", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(other, "login", nil)))
	// demo-personal's challenge, answered by demo-enterprise's key.
	k = b.pageAssertion(acct, "login", nil, opsCred)
	if c := parseCredential(t, k.Credential); c["id"] != opsCred {
		t.Fatalf("the browser answered with credential %v, not demo-enterprise's", c["id"])
	}
	refused("another account's key for this account's challenge", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(k, "login", nil)))
	login("after another account's")

	// Another origin: the console on a second port of the same server. The
	// browser signs for it (the RP ID localhost fits any port), and the
	// server, whose origins are port 1's, refuses.
	other2 := httptest.NewServer(s.handler)
	t.Cleanup(other2.Close)
	otherOrigin := "http://localhost:" + strings.TrimPrefix(other2.URL, "http://127.0.0.1:")
	b.do("open the console on another origin", chromedp.Navigate(otherOrigin+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	k = b.pageAssertion(acct, "login", nil, "")
	if cd := parseCredential(t, k.Credential).clientData(t); cd["origin"] != otherOrigin {
		t.Fatalf("clientDataJSON origin %v, want %s", cd["origin"], otherOrigin)
	}
	refused("an assertion from another origin", b.pageAPI(http.MethodPost, base+"/verify", verifyBody(k, "login", nil)))
	b.do("back to localhost", chromedp.Navigate(s.localURL+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	login("after another origin's")
	if n := s.auditCount(t, acct, "mfa.verify.login", "invalid", "webauthn"); n < 7 {
		t.Errorf("%d refused logins by key audited, want at least 7", n)
	}

	// 9. The authenticator's counter set back below the stored one: the
	// login is refused as a possible clone and the owner is told.
	var storedCount uint32
	for _, k := range s.keysOf(t, acct) {
		if base64.RawURLEncoding.EncodeToString(k.CredentialID) == personalCred {
			storedCount = k.SignCount
		}
	}
	var keyCount float64
	for _, c := range keyCredentials(b, first) {
		if base64.RawURLEncoding.EncodeToString(c.CredentialID) == personalCred {
			keyCount = c.SignCount
		}
	}
	t.Logf("sign count: stored %d, on the authenticator %v", storedCount, keyCount)
	if storedCount < 3 || float64(storedCount) != keyCount {
		t.Fatalf("stored sign count %d, the authenticator's %v: want them equal and at least 3", storedCount, keyCount)
	}
	credID, _ := base64.RawURLEncoding.DecodeString(personalCred)
	setSignCount(b, first, credID, 1)
	clonesBefore := s.outboxKinds(t, phone)["webauthn_clone_suspected"]
	b.click("login-kind-webauthn")
	b.click("login-verify")
	b.waitText("status", "Error possible_cloned_key:")
	b.waitText("login-result", "signature counter went backwards")
	if n := s.outboxKinds(t, phone)["webauthn_clone_suspected"]; n != clonesBefore+1 {
		t.Errorf("%d webauthn_clone_suspected messages to the owner's phone, want %d", n, clonesBefore+1)
	}
	if s.outboxKinds(t, demoPersonal.Email)["webauthn_clone_suspected"] == 0 {
		t.Error("no webauthn_clone_suspected e-mail to the owner")
	}
	if n := s.auditCount(t, acct, "webauthn.clone_suspected", "denied", ""); n != 1 {
		t.Errorf("%d webauthn.clone_suspected audit entries, want 1", n)
	}
	for _, k := range s.keysOf(t, acct) {
		if base64.RawURLEncoding.EncodeToString(k.CredentialID) == personalCred && k.SignCount != storedCount {
			t.Errorf("the refused assertion moved the stored sign count from %d to %d", storedCount, k.SignCount)
		}
	}
	// The page's own fetch says the same.
	if a := b.pageAPI(http.MethodPost, base+"/verify", verifyBody(b.pageAssertion(acct, "login", nil, ""), "login", nil)); a.Status != http.StatusForbidden || a.code() != "possible_cloned_key" {
		t.Errorf("a second assertion with the counter still behind = %d %v, want 403 possible_cloned_key", a.Status, a.Body)
	}
	b.screenshot("wa-12-cloned")
	b.fitsNarrow("wa-13-cloned-375px")
}

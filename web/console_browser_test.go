package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/web"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

const browserConsoleKey = "web-test-console-key-0123456789abcdef"

// demoEnterprise is the dev stack's demo enterprise account; the test binds
// a hardware card to it.
var demoEnterprise = store.Account{
	ID: "demo-enterprise", Type: store.Enterprise, BoundPhone: "13700137000", Email: "ops@example.com",
	Logins:      []store.Login{{Kind: store.LoginEmail, ID: "ops@example.com"}},
	RealName:    store.RealName{Verified: true, Name: "李四", IDNumber: "110101199003071233"},
	Company:     store.Company{Name: "示例科技有限公司", RegNumber: "91350100M000100Y43"},
	LoginMethod: store.LoginMFA,
}

const demoSerial = "MFAD-T001"

// browserStack is the product started in-process the way `mfaflow dev`
// wires it: Temporal with the encrypting codec, a worker with the production
// registration, a SQLite store, the outbox notifier and the API in dev mode
// with the console page. Its WebAuthn relying party is the dev one: RP ID
// localhost, the server's URL on localhost and 127.0.0.1 as origins.
type browserStack struct {
	st  store.Store
	url string // http://127.0.0.1:<port>
	// localURL is http://localhost:<port>, where security keys work.
	localURL string
	// handler is the API with the console page, for a second server.
	handler http.Handler
}

func startBrowserStack(t *testing.T) *browserStack {
	t.Helper()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.Start(t, codec.DataConverter(keys))
	st := storetest.SQLite(t)
	putAccounts(t, st, demoPersonal, demoEnterprise)
	importDemoCard(t, st, keys)

	// The relying party needs the port first: as devWebAuthn in cmd/mfaflow.
	hs := httptest.NewUnstartedServer(nil)
	_, port, err := net.SplitHostPort(hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wa, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{RPID: "localhost", RPName: "mfaflow (web test)",
		Origins: []string{"http://localhost:" + port, "http://127.0.0.1:" + port}})
	if err != nil {
		t.Fatal(err)
	}

	outbox := notify.Outbox{Store: st}
	acts := &activities.Activities{Store: st, Notifier: outbox, Keys: keys, WebAuthn: wa} // as cmd/mfaflow newActivities
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, acts) }, sdkworker.Options{})

	srv := api.NewServer(api.Deps{
		Store:          st,
		Temporal:       ts.GetDefaultClient(),
		ConsoleService: &console.Service{Store: st, Keys: keys, Notifier: outbox, WebAuthn: wa},
		Notifier:       outbox,
		Keys:           keys,
		Console:        auth.NewConsoleKeys([]string{browserConsoleKey}),
		JWT:            &auth.Verifier{Keys: auth.HS256("web-test-jwt-secret-0123456789abcdef")},
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Dev:            true,
		Web: web.NewConsole(web.ConsoleConfig{
			Directory: st, Accounts: []string{demoPersonal.ID, demoEnterprise.ID},
			DevConsoleKey: browserConsoleKey, DevLinks: true, DemoSerials: []string{demoSerial},
		}),
	})
	hs.Config.Handler = srv
	hs.Start()
	t.Cleanup(hs.Close)
	return &browserStack{st: st, url: hs.URL, localURL: "http://localhost:" + port, handler: srv}
}

// importDemoCard imports one card into the demo batch, whose current code
// the dev route /dev/hardware-tokens/{serial}/code shows.
func importDemoCard(t *testing.T, st store.Store, keys *mfa.Keyring) {
	t.Helper()
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	csv := "serial,secret,algorithm,digits,period\n" + demoSerial + "," + mfa.EncodeSecret(secret) + ",SHA1,6,30\n"
	im := inventory.Importer{Store: st, Keys: keys}
	if _, err := im.Import(context.Background(), strings.NewReader(csv), inventory.Options{Format: inventory.CSV, BatchID: api.DemoBatchID, Actor: "system"}); err != nil {
		t.Fatalf("import demo card: %v", err)
	}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// smsCode reads the newest SMS code sent to phone from the outbox, waiting
// up to 10 s for it.
func (s *browserStack) smsCode(t *testing.T, phone string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := s.st.ListOutbox(context.Background(), phone, 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Kind == activities.KindSMSCode {
				if c := sixDigits.FindString(m.Body); c != "" {
					return c
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SMS code sent to %s", phone)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chromiumPath finds a Chromium or Chrome binary. The browser test fails
// (never skips) without one.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MFAFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is required for the console browser test and was not found " +
		"(looked for chromium, chromium-browser, google-chrome; or set MFAFLOW_CHROMIUM): apt-get install chromium")
	return ""
}

// artifactDir is where the test saves its screenshots:
// $MFAFLOW_TEST_ARTIFACTS/<test name> when set, else the repository's
// git-ignored .cache/screenshots/<test name>, where they stay for a look
// after the run.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MFAFLOW_TEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", ".cache", "screenshots")
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab on the page under test.
type browser struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	mu     sync.Mutex
	faults []string // uncaught exceptions and CSP violations
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 1200),
		// An English browser: the pages' language comes from
		// Accept-Language unless a test picks one with ?lang=.
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("accept-lang", "en-US,en"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, shots: artifactDir(t)}
	// The first Run starts the browser; it must not have a timeout.
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	return b
}

// onEvent records page faults; it runs on the tab's reader goroutine.
func (b *browser) onEvent(ev any) {
	var fault string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		fault = "exception: " + d.Text
		if d.Exception != nil {
			fault += " " + d.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if e.Entry.Source == cdplog.EntrySourceSecurity || e.Entry.Source == cdplog.EntrySourceJavascript ||
			strings.Contains(e.Entry.Text, "Content Security Policy") {
			fault = fmt.Sprintf("console %s/%s: %s", e.Entry.Source, e.Entry.Level, e.Entry.Text)
		}
	}
	if fault != "" {
		b.mu.Lock()
		b.faults = append(b.faults, fault)
		b.mu.Unlock()
	}
}

// checkFaults fails the test on any uncaught exception or CSP violation.
func (b *browser) checkFaults() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.faults {
		b.t.Errorf("page fault: %s", f)
	}
	b.faults = nil
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (status line: %q)", what, err, b.statusNoFail())
	}
}

func (b *browser) text(id string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) attr(id, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID(id), name))
	if err != nil || !r.Exists {
		b.t.Fatalf("attribute %s of #%s: %v (exists %v)", name, id, err, r.Exists)
	}
	return r.Value
}

func (b *browser) statusNoFail() string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("status") || {}).textContent || ""`))
	return s
}

// waitText waits until the visible element #id contains want.
func (b *browser) waitText(id, want string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.getElementById(%s); return !!e && !e.hidden && e.textContent.includes(%s); })()`, jsString(id), jsString(want))
	// Generous: on a loaded machine a workflow update behind the page can
	// take tens of seconds; a pass returns as soon as the text shows.
	ctx, cancel := context.WithTimeout(b.ctx, 155*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(150*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.getElementById(%s) || {}).textContent || ""`, jsString(id))))
		b.t.Fatalf("#%s never showed %q: has %q; status line %q", id, want, strings.TrimSpace(got), b.statusNoFail())
	}
}

// typeInto replaces the value of the input #id with v, as a user typing.
func (b *browser) typeInto(id, v string) {
	b.t.Helper()
	clear := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%s).value = ""`, jsString(id)))
	b.do("type into #"+id, clear, chromedp.SendKeys(chromedp.ID(id), v))
}

// click clicks #id as a user does, with the mouse at its centre, once the
// page holds still: the element is scrolled to the middle of the viewport
// and clicked only when two looks 50 ms apart find it at the same place and
// nothing covers its centre. A click computed while a re-render moves the
// layout lands elsewhere and is lost (it was, under -race, on a case page
// that rendered twice); something covering the element is a page bug and
// fails the test.
func (b *browser) click(id string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => {
		const e = document.getElementById(%s);
		if (!e) { return {err: "no such element"}; }
		const r0 = e.getBoundingClientRect();
		if (r0.bottom < 0 || r0.top > window.innerHeight || r0.right < 0 || r0.left > window.innerWidth ||
			r0.top < window.innerHeight * 0.2 || r0.bottom > window.innerHeight * 0.8) {
			e.scrollIntoView({block: "center", inline: "center"});
		}
		const r = e.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		const hit = document.elementFromPoint(x, y);
		const covered = !(hit === e || e.contains(hit)) ? (hit ? hit.tagName + "#" + hit.id + "." + hit.className : "nothing") : "";
		return {x: x, y: y, w: r.width, h: r.height, covered: covered};
	})()`, jsString(id))
	type spot struct {
		X, Y, W, H float64
		Covered    string
		Err        string
	}
	var last spot
	deadline := time.Now().Add(20 * time.Second)
	for {
		cur := eval[spot](b, js)
		if cur.Err != "" {
			b.t.Fatalf("click #%s: %s", id, cur.Err)
		}
		if cur.Covered == "" && cur.W > 0 && cur.H > 0 && cur == last {
			b.do("click #"+id, chromedp.MouseClickXY(cur.X, cur.Y))
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("click #%s: never still and uncovered (last %+v)", id, cur)
		}
		last = cur
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the whole page as a PNG and logs its path.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// At the top, the sticky status line sits in its place in the full-page shot.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		b.t.Fatalf("scroll: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// waitNextStep sleeps until the TOTP step after the one of `after` has
// begun (at most 31 s), so a code newer than every code used so far exists.
func waitNextStep(t *testing.T, after time.Time) {
	t.Helper()
	next := after.Truncate(30 * time.Second).Add(30*time.Second + 300*time.Millisecond)
	if d := time.Until(next); d > 0 {
		t.Logf("waiting %v for the next 30-second step", d.Round(100*time.Millisecond))
		time.Sleep(d)
	}
}

// awayFromBoundary waits out the last two seconds of a step, so codes
// computed now are still current when the server checks them.
func awayFromBoundary() time.Time {
	now := time.Now()
	if left := now.Truncate(30 * time.Second).Add(30 * time.Second).Sub(now); left < 2*time.Second {
		time.Sleep(left + 100*time.Millisecond)
	}
	return time.Now()
}

// TestConsoleInBrowser drives the console demo page in headless Chromium
// against the whole stack: bind a virtual device (SMS code, QR and key, two
// consecutive codes, both scopes; its recovery codes show), pass the login
// check, delete a VM with an operation grant and see the grant refused the
// second time; then bind a hardware card on another account.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startBrowserStack(t)
	defer b.checkFaults()

	// 1. The page loads with the demo accounts and their MFA state.
	b.do("open the console", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("protection", "Login protection: off · Operation protection: off")
	b.waitText("devices", "No MFA device bound.")
	b.waitText("status", "Account demo-personal loaded.")
	b.checkPage(i18n.EN, "console-01-loaded")

	// 2. Bind a virtual device: the API sends an SMS code.
	b.click("bind-virtual")
	b.waitText("sms-step", "138****8000")
	b.waitText("status", "SMS code sent to 138****8000")
	if href := b.attr("outbox-link", "href"); href != "/dev/outbox?to=13800138000" {
		t.Errorf("outbox link = %q", href)
	}
	b.typeInto("sms-code", s.smsCode(t, demoPersonal.BoundPhone))
	b.screenshot("02-sms-code")
	b.click("sms-submit")

	// 3. The QR code (fetched with the bearer header) and the key.
	b.waitText("status", "Identity verified.")
	b.do("QR image loads", chromedp.Poll[chromedp.Void](`(() => { const i = document.getElementById("qr"); return i.src.startsWith("blob:") && i.complete && i.naturalWidth > 0; })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	secret, err := mfa.DecodeSecret(b.text("secret"))
	if err != nil || len(secret) < 20 {
		t.Fatalf("#secret = %q: not a 160-bit base32 key (%v)", b.text("secret"), err)
	}
	b.notCovered("code1")
	b.screenshot("03-qr")

	// 4. Two consecutive codes from the "app" and both scopes.
	now := awayFromBoundary()
	bindTime := now
	b.typeInto("code1", mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}))
	b.typeInto("code2", mfa.TOTP(secret, now, mfa.Params{}))
	b.click("scope-login")
	b.click("scope-operation")
	b.screenshot("04-codes")
	b.click("confirm")
	b.waitText("bind-result", "Bound: Virtual MFA device")
	b.waitText("bind-result", "Login protection on, operation protection on.")
	b.waitText("devices", "Virtual MFA device dev")
	b.waitText("protection", "Login protection: on · Operation protection: on")
	b.shownCodes()
	b.checkPage(i18n.EN, "console-05-bound")

	// 5. Login check. The binding's own code is refused as reused, with the
	// API's error code in the status line.
	b.typeInto("login-code", mfa.TOTP(secret, bindTime, mfa.Params{}))
	b.click("login-verify")
	b.waitText("status", "Error code_reused:")
	b.screenshot("06-login-reused")
	waitNextStep(t, bindTime)
	loginTime := awayFromBoundary()
	b.typeInto("login-code", mfa.TOTP(secret, loginTime, mfa.Params{}))
	b.click("login-verify")
	b.waitText("login-result", "Login verified")
	b.waitText("status", "Login check passed.")
	b.screenshot("07-login-verified")

	// 6. Delete VM vm-123 with a fresh code: a grant, used once.
	waitNextStep(t, loginTime)
	b.typeInto("op-code", mfa.TOTP(secret, awayFromBoundary(), mfa.Params{}))
	b.click("op-verify")
	b.waitText("op-result", "VM deleted: vm-123")
	b.screenshot("08-vm-deleted")
	b.click("op-reuse")
	b.waitText("status", "Error grant_used:")
	b.waitText("op-result", "Refused")
	b.screenshot("09-grant-refused")

	// 7. Bind a hardware card to the enterprise account, operation scope only.
	b.do("pick demo-enterprise", chromedp.Navigate(s.url+"/console?account=demo-enterprise"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-enterprise loaded.")
	b.click("bind-hardware")
	b.waitText("sms-step", "137****7000")
	b.typeInto("sms-code", s.smsCode(t, demoEnterprise.BoundPhone))
	b.click("sms-submit")
	b.waitText("status", "Enter the card's serial number")
	b.typeInto("serial", demoSerial)
	href := b.attr("token-link", "href")
	if href != "/dev/hardware-tokens/"+demoSerial+"/code" {
		t.Fatalf("token link = %q", href)
	}
	awayFromBoundary()
	b.typeInto("hw-code", readDemoCode(t, s.url+href))
	b.click("hw-scope-operation")
	b.screenshot("10-hardware")
	b.click("hw-confirm")
	b.waitText("bind-result", "Bound: Hardware token card")
	b.waitText("bind-result", "(SN "+demoSerial+"). Login protection off, operation protection on.")
	b.waitText("devices", "SN "+demoSerial)
	// The account's first device, so its recovery codes come with it.
	b.waitText("h-codes", "Your recovery codes for demo-enterprise")
	b.shownCodes()
	b.screenshot("11-hardware-bound")
}

// notCovered checks that the sticky status line does not cover the field
// #id when it has the focus (scrolled into view by the browser).
func (b *browser) notCovered(id string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const f = document.getElementById(%s); f.focus(); const s = document.getElementById("status").getBoundingClientRect();
		const r = f.getBoundingClientRect(); return JSON.stringify({focused: document.activeElement === f, top: r.top, bottom: r.bottom, statusBottom: s.bottom, vh: window.innerHeight}); })()`, jsString(id))
	var g struct {
		Focused                   bool
		Top, Bottom, StatusBottom float64
		VH                        float64 `json:"vh"`
	}
	if err := json.Unmarshal([]byte(eval[string](b, js)), &g); err != nil {
		b.t.Fatal(err)
	}
	if !g.Focused || g.Top < g.StatusBottom || g.Bottom > g.VH {
		b.t.Errorf("#%s focused: its box %.0f–%.0f px, the status line ends at %.0f px, the viewport at %.0f px: covered or out of view", id, g.Top, g.Bottom, g.StatusBottom, g.VH)
	}
}

// readDemoCode reads a demo card's current code from the dev route the page
// links to.
func readDemoCode(t *testing.T, url string) string {
	t.Helper()
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || out.Code == "" {
		t.Fatalf("GET %s = %d %v", url, res.StatusCode, errors.Join(err, fmt.Errorf("code %q", out.Code)))
	}
	return out.Code
}

// recoveryCodeShape is a recovery code as the API shows it (SPEC §6b).
var recoveryCodeShape = regexp.MustCompile(`^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{5}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{5}$`)

// smsCount counts the SMS codes sent to phone so far.
func (s *browserStack) smsCount(t *testing.T, phone string) int {
	t.Helper()
	msgs, err := s.st.ListOutbox(context.Background(), phone, 500)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Kind == activities.KindSMSCode {
			n++
		}
	}
	return n
}

// nextSMSCode waits up to 10 s for an SMS code to phone beyond the first
// `seen` and returns the newest.
func (s *browserStack) nextSMSCode(t *testing.T, phone string, seen int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.smsCount(t, phone) <= seen {
		if time.Now().After(deadline) {
			t.Fatalf("no new SMS code sent to %s", phone)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s.smsCode(t, phone)
}

// consoleCall sends a JSON request to the console API with the test's key
// and returns the status.
func (s *browserStack) consoleCall(t *testing.T, method, path string, body any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+browserConsoleKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// freshCode returns a code of secret for a step after the one of `after`
// (the last step the server took from this device) that the server still
// accepts: the current step, or the next one (inside the ±1 window) while
// the current is the step of `after`. It also returns the code's time.
func freshCode(secret mfa.Secret, after time.Time) (string, time.Time) {
	at := awayFromBoundary()
	if at.Truncate(30 * time.Second).Equal(after.Truncate(30 * time.Second)) {
		at = at.Add(30 * time.Second)
	}
	return mfa.TOTP(secret, at, mfa.Params{}), at
}

// tick checks the checkbox #id if it is not checked yet.
func (b *browser) tick(id string) {
	b.t.Helper()
	if !eval[bool](b, fmt.Sprintf(`document.getElementById(%s).checked`, jsString(id))) {
		b.click(id)
	}
}

// visible waits until #id is shown.
func (b *browser) visible(id string) {
	b.t.Helper()
	b.waitJS("#"+id+" shows", fmt.Sprintf(`(() => { const e = document.getElementById(%s); return !!e && !e.hidden && e.offsetParent !== null; })()`, jsString(id)), 20*time.Second)
}

// shownCodes waits for the recovery codes panel and returns its codes,
// after checking there are 10 distinct codes of the API's shape.
func (b *browser) shownCodes() []string {
	b.t.Helper()
	b.visible("codes-panel")
	codes := eval[[]string](b, `Array.from(document.querySelectorAll("#codes-list li code"), c => c.textContent)`)
	if len(codes) != 10 {
		b.t.Fatalf("the page shows %d recovery codes, want 10", len(codes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if !recoveryCodeShape.MatchString(c) || seen[c] {
			b.t.Fatalf("recovery code %d on the page is malformed or repeated", i+1)
		}
		seen[c] = true
	}
	return codes
}

// fitsNarrow shows the page 375 px wide, checks nothing overflows
// sideways and saves a screenshot, then restores the window's size.
func (b *browser) fitsNarrow(name string) {
	b.t.Helper()
	wide := eval[int](b, `window.innerWidth`)
	b.do("375 px wide", chromedp.EmulateViewport(375, 812))
	b.waitJS("the layout settles at 375 px", `window.innerWidth === 375`, 10*time.Second)
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 375 {
		b.t.Errorf("%s: the page is %d px wide at a 375 px viewport", name, w)
	}
	b.screenshot(name)
	b.restoreWidth(wide)
}

// waitFile waits up to 20 s for a finished download named name in dir.
func waitFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
			return b
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("no download %s in %s (has %d entries)", name, dir, len(entries))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsoleInBrowserRecoveryCodes drives the step-up and recovery codes
// of the console page in headless Chromium against the whole stack (SPEC
// §6a, §6b): the first virtual device binds with the SMS check alone and
// the page shows 10 recovery codes once, with copy and download; a reload
// no longer shows them; a second device is refused without a proof, before
// any SMS, and binds with a code of the first; a recovery code passes the
// login check once; a recovery code makes a new set, which replaces the
// old; and the page warns at 3 codes left.
func TestConsoleInBrowserRecoveryCodes(t *testing.T) {
	b := newBrowser(t)
	s := startBrowserStack(t)
	defer b.checkFaults()
	phone := demoPersonal.BoundPhone
	const base = "/v1/accounts/demo-personal/mfa"

	b.do("open the console", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	b.waitText("recovery-left", "No recovery codes yet")
	downloads := t.TempDir()
	b.do("allow downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
			Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	}))

	// 1. The first device binds with the SMS check alone.
	b.click("bind-virtual")
	b.waitText("status", "SMS code sent to 138****8000")
	b.typeInto("sms-code", s.smsCode(t, phone))
	b.click("sms-submit")
	b.waitText("status", "Identity verified.")
	first, err := mfa.DecodeSecret(b.text("secret"))
	if err != nil {
		t.Fatalf("#secret: %v", err)
	}
	firstAt := awayFromBoundary()
	b.typeInto("code1", mfa.TOTP(first, firstAt.Add(-30*time.Second), mfa.Params{}))
	b.typeInto("code2", mfa.TOTP(first, firstAt, mfa.Params{}))
	b.tick("scope-login")
	b.click("confirm")
	b.waitText("bind-result", "Bound: Virtual MFA device")

	// 2. Its recovery codes show once, with the warning that they do, and
	// focus moves to them.
	b.waitText("status", "Save your recovery codes now: they are shown only once.")
	codes := b.shownCodes()
	b.waitText("h-codes", "Your recovery codes for demo-personal")
	b.waitText("codes-once", "They are shown only once, here and now. Each code works once.")
	b.waitText("recovery-left", "Recovery codes left: 10")
	if f := eval[string](b, `document.activeElement ? document.activeElement.id : ""`); f != "h-codes" {
		t.Errorf("focus is on #%s after the binding, want the recovery codes' heading", f)
	}
	if eval[bool](b, `getComputedStyle(document.querySelector("#codes-list code")).fontFamily.includes("monospace")`) == false {
		t.Error("the recovery codes are not in a monospace font")
	}
	b.screenshot("rc-01-codes-shown")
	b.fitsNarrow("rc-02-codes-375px")

	b.click("codes-copy")
	b.waitJS("the copy is confirmed", `(() => { const t = document.getElementById("codes-note").textContent; return t.includes("Copied the 10 codes") || t.includes("The codes are selected"); })()`, 20*time.Second)
	b.click("codes-download")
	b.waitText("codes-note", "Saved as mfaflow-recovery-codes-demo-personal.txt.")
	file := string(waitFile(t, downloads, "mfaflow-recovery-codes-demo-personal.txt"))
	if !strings.Contains(file, "Account: demo-personal") || !strings.Contains(file, "Each code works once") {
		t.Error("the downloaded file lacks its account or the single-use warning")
	}
	for i, c := range codes {
		if !strings.Contains(file, c+"\n") {
			t.Errorf("the downloaded file lacks code %d", i+1)
		}
	}
	if n := eval[int](b, `localStorage.length + sessionStorage.length + document.cookie.length`); n != 0 {
		t.Errorf("the page keeps something in web storage or cookies (%d)", n)
	}

	// 3. A reload shows them no more.
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", "Account demo-personal loaded.")
	b.waitText("recovery-left", "Recovery codes left: 10")
	if eval[bool](b, `!document.getElementById("codes-panel").hidden || document.querySelectorAll("#codes-list li").length > 0`) {
		t.Error("the recovery codes panel shows after a reload")
	}
	page := eval[string](b, `document.documentElement.outerHTML`)
	for i, c := range codes {
		if strings.Contains(page, c) {
			t.Errorf("code %d is on the page after a reload", i+1)
		}
	}
	b.screenshot("rc-03-reloaded")

	// 4. A second device without a proof: the page asks for one first;
	// "neither" gets the server's refusal, which points to the appeal, and
	// no SMS goes out.
	smsBefore := s.smsCount(t, phone)
	b.click("bind-virtual")
	b.visible("bind-proof-step")
	b.waitText("status", "This account already has an MFA device.")
	if f := eval[string](b, `document.activeElement.id`); f != "bind-proof-code" {
		t.Errorf("focus is on #%s, want the proof's code input", f)
	}
	b.click("bind-proof-kind-none")
	b.visible("bind-proof-none-help")
	b.click("bind-proof-submit")
	b.waitText("status", "Error step_up_required:")
	b.waitText("status", "appeal")
	if eval[bool](b, `document.getElementById("sms-step").hidden === false || document.getElementById("bind-proof-step").hidden`) {
		t.Error("after the refusal the SMS step shows or the proof step is gone")
	}
	if n := s.smsCount(t, phone); n != smsBefore {
		t.Errorf("a refused binding sent %d SMS codes", n-smsBefore)
	}
	b.screenshot("rc-04-refused-without-proof")
	b.fitsNarrow("rc-05-refused-375px")

	// 5. With a code of the first device it binds.
	b.click("bind-proof-kind-code")
	proof, _ := freshCode(first, firstAt)
	b.typeInto("bind-proof-code", proof)
	b.screenshot("rc-06-proof")
	b.click("bind-proof-submit")
	b.waitText("status", "SMS code sent to 138****8000")
	b.typeInto("sms-code", s.nextSMSCode(t, phone, smsBefore))
	b.click("sms-submit")
	b.waitText("status", "Identity verified.")
	second, err := mfa.DecodeSecret(b.text("secret"))
	if err != nil {
		t.Fatalf("#secret: %v", err)
	}
	secondAt := awayFromBoundary()
	b.typeInto("code1", mfa.TOTP(second, secondAt.Add(-30*time.Second), mfa.Params{}))
	b.typeInto("code2", mfa.TOTP(second, secondAt, mfa.Params{}))
	b.click("confirm")
	b.waitText("bind-result", "Bound: Virtual MFA device")
	b.waitText("status", "The MFA device is bound.")
	b.waitJS("two devices listed", `document.querySelectorAll("#devices li strong").length === 2`, 20*time.Second)
	b.waitText("recovery-left", "Recovery codes left: 10")
	if eval[bool](b, `!document.getElementById("codes-panel").hidden`) {
		t.Error("the second binding showed recovery codes")
	}
	b.screenshot("rc-07-second-bound")

	// 6. A recovery code, typed in lower case without its hyphen, passes the
	// login check once.
	b.click("login-kind-recovery")
	b.visible("login-recovery")
	b.typeInto("login-recovery", strings.ToLower(strings.ReplaceAll(codes[0], "-", "")))
	b.click("login-verify")
	b.waitText("login-result", "Login verified with a recovery code")
	b.waitText("recovery-left", "Recovery codes left: 9")
	if v := eval[string](b, `document.getElementById("login-recovery").value`); v != "" {
		t.Error("the used recovery code stays in its input")
	}
	b.screenshot("rc-08-login-recovery")

	// 7. Another recovery code makes a new set, shown once; the old set no
	// longer works.
	b.click("recovery-new")
	b.visible("regen-step")
	b.click("regen-proof-kind-recovery")
	b.typeInto("regen-proof-recovery", codes[1])
	b.click("regen-submit")
	b.waitText("status", "A new set of recovery codes is made")
	b.waitText("h-codes", "Your new recovery codes for demo-personal")
	renewed := b.shownCodes()
	for _, c := range renewed {
		for _, old := range codes {
			if c == old {
				t.Fatal("the new set repeats a code of the old one")
			}
		}
	}
	b.waitText("recovery-left", "Recovery codes left: 10")
	b.screenshot("rc-09-new-set")
	b.click("codes-done")
	b.waitJS("the codes are gone", `document.getElementById("codes-panel").hidden && document.querySelectorAll("#codes-list li").length === 0`, 10*time.Second)
	b.typeInto("login-recovery", codes[2])
	b.click("login-verify")
	b.waitText("status", "Error invalid_code:")

	// 8. At 3 codes left the page warns.
	for _, c := range renewed[:7] {
		if code := s.consoleCall(t, http.MethodPost, base+"/verify", map[string]string{"recovery_code": c, "purpose": "login"}); code != http.StatusOK {
			t.Fatalf("login with a recovery code over HTTP = %d", code)
		}
	}
	b.click("refresh")
	b.waitText("recovery-left", "Recovery codes left: 3")
	b.waitText("recovery-warning", "Only 3 recovery codes left.")
	b.screenshot("rc-10-three-left")
}

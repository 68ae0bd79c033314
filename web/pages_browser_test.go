package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/web"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

var pagesJWTSecret = []byte("web-pages-test-jwt-secret-0123456789abcdef")

// demoUnverified has an MFA device but no real-name verification: it cannot
// be unbound by appeal.
var demoUnverified = store.Account{
	ID: "demo-unverified", Type: store.Personal, BoundPhone: "13900139000",
	Logins:      []store.Login{{Kind: store.LoginWeChat, ID: "wxid_demo01"}},
	LoginMethod: store.LoginSecurityCenter,
}

// demoOwner is a second verified personal account, for the owner's cancel link.
var demoOwner = store.Account{
	ID: "demo-owner", Type: store.Personal, BoundPhone: "13600136000", Email: "owner@example.com",
	Logins:      []store.Login{{Kind: store.LoginEmail, ID: "owner@example.com"}},
	RealName:    store.RealName{Verified: true, Name: "张三", IDNumber: "11010519491231002X"},
	LoginMethod: store.LoginMFA,
}

// appealStack is the product started in-process as `mfaflow serve` wires it
// for appeals, but on test servers: Temporal with production's encrypting
// converters, a worker with the production registration, a SQLite store,
// documents in the harness's MinIO with server-side encryption, the outbox
// notifier, and the API with the public pages; in dev mode only for the
// console demo page (as `mfaflow dev` mounts it), where the journey binds.
type appealStack struct {
	st   store.Store
	keys *mfa.Keyring
	url  string
}

// appealBackends starts what an appeal stack's API runs on (an encrypting
// Temporal test server with a versioned worker, a SQLite store, MinIO) and
// a listener for it, and returns the API's settings, served at url, for
// the caller to adjust before serveAppealStack.
func appealBackends(t *testing.T) (deps api.Deps, ln net.Listener, url string) {
	t.Helper()
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, keys)
	st := storetest.SQLite(t)
	m := harness.MinIOServer(t)
	blobs, err := blob.Open(context.Background(), blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t), Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	outbox := notify.Outbox{Store: st}
	acts := &activities.Activities{Store: st, Notifier: outbox, Keys: keys, Blobs: blobs}
	ts.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, acts) }, sdkworker.Options{})

	// The cancel links in the notices point at this server, so its address
	// is needed before the API is built.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url = "http://" + ln.Addr().String()
	return api.Deps{
		Store:    st,
		Temporal: ts.GetDefaultClient(),
		ConsoleService: &console.Service{Store: st, Keys: keys, Notifier: outbox,
			OnFactorUsed: api.FactorUsedHook(st, ts.GetDefaultClient(), nil)},
		Documents:        blobs,
		Appeals:          api.AppealConfig{Cooldown: 0, DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Retention: time.Hour, PublicURL: url},
		OwnerCancelToken: func(id string) string { return activities.OwnerCancelToken(keys, id) },
		Notifier:         outbox,
		Keys:             keys,
		Console:          auth.NewConsoleKeys([]string{browserConsoleKey}),
		Logger:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Pages:            web.NewPages(web.PagesConfig{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}),
	}, ln, url
}

// serveAppealStack serves the API of deps on ln until the test ends.
func serveAppealStack(t *testing.T, deps api.Deps, ln net.Listener, url string) *appealStack {
	t.Helper()
	hs := httptest.NewUnstartedServer(api.NewServer(deps))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	return &appealStack{st: deps.Store, keys: deps.Keys, url: url}
}

func startAppealStack(t *testing.T) *appealStack {
	t.Helper()
	deps, ln, url := appealBackends(t)
	deps.JWT = &auth.Verifier{Keys: auth.HS256(string(pagesJWTSecret))}
	// The console demo page, as in the dev stack, for the journey's
	// binding and the unbound device afterwards.
	deps.Dev = true
	deps.Web = web.NewConsole(web.ConsoleConfig{Directory: deps.Store, DevConsoleKey: browserConsoleKey, DevLinks: true})
	s := serveAppealStack(t, deps, ln, url)
	putAccounts(t, s.st, demoUnverified)
	s.bindDevice(t, demoUnverified.ID)
	return s
}

// bindDevice stores an active virtual MFA device for the account.
func (s *appealStack) bindDevice(t *testing.T, account string) {
	t.Helper()
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	id := "dev-web-" + account
	sealed, err := s.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.CreateDevice(context.Background(), store.Device{ID: id, AccountID: account, Type: store.Virtual, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		t.Fatal(err)
	}
}

// reviewerToken signs a reviewer JWT.
func reviewerToken(t *testing.T, sub string) string {
	t.Helper()
	tok, err := auth.SignHS256(pagesJWTSecret, sub, []string{auth.RoleReviewer}, "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// writeJPEG encodes a real w×h JPEG (a gradient with a dark band) into dir.
func writeJPEG(t *testing.T, dir, name string, w, h int) (path string, data []byte) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{R: uint8(40 + 200*x/w), G: uint8(90 + 120*y/h), B: 200, A: 255}
			if y > h/3 && y < h/2 {
				c = color.RGBA{R: 30, G: 35, B: 48, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	data = buf.Bytes()
	if !bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}) {
		t.Fatalf("encoded JPEG starts with % x", data[:3])
	}
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// eval runs a JavaScript expression in the page.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitJS waits until the expression is true.
func (b *browser) waitJS(what, js string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		b.t.Fatalf("%s: %v (status line: %q)", what, err, b.statusNoFail())
	}
}

// waitLocation waits until the tab has navigated to pathAndQuery; it rides
// out the evaluation errors of the navigation itself.
func (b *browser) waitLocation(pathAndQuery string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname + location.search : ""`))
		cancel()
		if err == nil && got == pathAndQuery {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the tab never reached %s: at %q (%v)", pathAndQuery, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pick selects the option v of the select #id, as a user would.
func (b *browser) pick(id, v string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const s = document.getElementById(%s); s.value = %s; s.dispatchEvent(new Event("change", {bubbles: true})); return s.value; })()`, jsString(id), jsString(v))
	if got := eval[string](b, js); got != v {
		b.t.Fatalf("select #%s: value %q, want %q", id, got, v)
	}
}

// fillAppeal fills the personal appeal form.
func (b *browser) fillAppeal(a store.Account, loginKind, loginID, name, idNumber string) {
	b.t.Helper()
	b.click("type-personal")
	b.typeInto("account_id", a.ID)
	b.pick("login_kind", loginKind)
	b.typeInto("login_id", loginID)
	b.typeInto("bound_phone", a.BoundPhone)
	b.typeInto("name", name)
	b.typeInto("id_number", idNumber)
	b.typeInto("contact_phone", "13911112222")
}

// TestAppealFormUnverifiedInBrowser: a field error next to its field, then
// the clear refusal for an account without real-name verification.
func TestAppealFormUnverifiedInBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startAppealStack(t)
	defer b.checkFaults()

	b.do("open the appeal form", chromedp.Navigate(s.url+"/appeal"), chromedp.WaitVisible(chromedp.ID("appeal-form")))
	b.waitText("real-name-rule", "Only accounts that have completed real-name verification can be unbound.")
	// A bad ID number checksum: the API names the field, the page shows it there.
	b.fillAppeal(demoUnverified, "wechat", "wxid_demo01", "王五", "110101194912310021")
	if got := b.text("login_id_label"); got != "WeChat ID" {
		t.Errorf("login id label = %q after picking WeChat", got)
	}
	b.click("file-appeal")
	b.waitText("err-id_number", "check digit")
	if inv := b.attr("id_number", "aria-invalid"); inv != "true" {
		t.Errorf("#id_number aria-invalid = %q", inv)
	}
	if focused := eval[string](b, `document.activeElement.id`); focused != "id_number" {
		t.Errorf("focus on #%s, want #id_number", focused)
	}
	b.notCovered("id_number")
	b.screenshot("01-field-error")

	// A valid form for an unverified account: refused, and the page says why.
	b.typeInto("id_number", "11010519491231002X")
	b.click("file-appeal")
	b.waitText("form-error", "has not completed real-name verification, so its MFA device cannot be unbound")
	b.waitText("form-error", "Complete real-name verification for the account first")
	b.waitText("status", "The appeal was not filed")
	if !eval[bool](b, `document.getElementById("err-id_number").hidden && document.getElementById("upload-step").hidden`) {
		t.Error("the old field error is still shown, or the upload step opened")
	}
	if n := eval[int](b, `sessionStorage.length`); n != 0 {
		t.Errorf("sessionStorage holds %d items after a refused appeal", n)
	}
	b.checkPage(i18n.EN, "appeal-refused")
	b.screenshot("02-real-name-not-verified")
}

// journeyAccounts are the accounts of one language's journey: a verified
// personal account without a device, which binds one on the console page
// and gets it unbound by appeal, and a second one (bound) whose owner
// cancels an appeal from the notice's link.
type journeyAccounts struct {
	applicant, owner store.Account
	loginID          string
}

var journeys = map[i18n.Lang]journeyAccounts{
	i18n.EN: {applicant: demoPersonal, owner: demoOwner, loginID: "10001"},
	i18n.ZH: {
		applicant: store.Account{ID: "demo-personal-zh", Type: store.Personal, BoundPhone: "13500135000", Email: "wangfang@example.com",
			Logins:   []store.Login{{Kind: store.LoginQQ, ID: "10002"}},
			RealName: store.RealName{Verified: true, Name: "王芳", IDNumber: "110101199001011237"}, LoginMethod: store.LoginMFA},
		owner: store.Account{ID: "demo-owner-zh", Type: store.Personal, BoundPhone: "13300133000", Email: "zhaoliu@example.com",
			Logins:   []store.Login{{Kind: store.LoginEmail, ID: "zhaoliu@example.com"}},
			RealName: store.RealName{Verified: true, Name: "赵六", IDNumber: "110102198506152344"}, LoginMethod: store.LoginMFA},
		loginID: "10002",
	},
}

// TestJourneyInBrowser drives the pages in headless Chromium against the
// whole stack, once in Chinese and once in English (the language chosen
// with the switcher's ?lang=, then remembered), as a user would:
//
//   - on the console page, an account binds a virtual MFA device: a first
//     binding is cancelled (and a new one starts at once); a reload in the
//     middle resumes the binding at its SMS step and again at its QR step;
//     two codes from the "app" bind it;
//   - the owner, having lost the phone, files an appeal on the form and
//     uploads a real JPEG (a non-image first, refused), submits, and the
//     status page's live region is left alone while nothing changes;
//   - a reviewer signs in with a pasted JWT, finds the appeal in the queue,
//     sees the photo through its signed link, claims and approves;
//   - the status page shows it unbound, and so does the console page;
//   - another account's owner cancels an appeal with the notice's link.
//
// Every text the test waits for is the catalog's in the page's language;
// each page is checked for raw keys, with axe-core at 1280 and 375 px, and
// saved as screenshots (.cache/screenshots/ or $MFAFLOW_TEST_ARTIFACTS).
// Then four-eyes in the page, in Chinese: the queue's default view shows an
// appeal that needs a second approval to every reviewer but its first
// approver, with the filter's words on its badge.
func TestJourneyInBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startAppealStack(t)
	defer b.checkFaults()
	// A reader in China: the pages show times in the browser's zone.
	b.do("the browser's zone", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Shanghai"})
		return err
	}))
	for _, l := range []i18n.Lang{i18n.ZH, i18n.EN} {
		j := journeys[l]
		putAccounts(t, s.st, j.applicant, j.owner)
		s.bindDevice(t, j.owner.ID)
		bindJourney(t, b, s, l, j.applicant)
		appealJourney(t, b, s, l, j)
	}
	fourEyesInPage(t, b, s)
}

// bindJourney binds a virtual device to account a on the console page in
// language l, cancelling a first binding and resuming the second after
// reloads.
func bindJourney(t *testing.T, b *browser, s *appealStack, l i18n.Lang, a store.Account) {
	tr := func(key string, kv ...string) string { return catalogText(l, key, kv...) }
	prefix := func(key string) string { p, _, _ := strings.Cut(tr(key), "{"); return p }
	masked := a.BoundPhone[:3] + "****" + a.BoundPhone[7:]
	open := func(what string) {
		b.do(what, chromedp.Navigate(s.url+"/console?lang="+string(l)+"&account="+a.ID), chromedp.WaitVisible(chromedp.ID("account")))
	}
	open("open the console")
	b.waitText("status", tr("page.console.accountLoaded", "id", a.ID))
	b.waitText("devices", tr("page.console.noDevice"))
	b.checkPage(l, "console-01-loaded")

	// A binding cancelled on the page: the next one starts at once.
	b.click("bind-virtual")
	b.waitText("status", prefix("page.console.smsSent"))
	waitSMSCode(t, s.st, a.BoundPhone, 1)
	b.visible("bind-cancel")
	b.click("bind-cancel")
	b.waitText("status", tr("page.console.bindingCancelled"))
	if !eval[bool](b, `document.getElementById("sms-step").hidden && document.getElementById("bind-pending").hidden`) {
		t.Error("the SMS step or the cancel button still shows after the cancel")
	}
	b.click("bind-virtual")
	sent, _, _ := strings.Cut(tr("page.console.smsSent", "phone", masked), "{expires}")
	b.waitText("status", sent)
	// The expiry in the reader's zone (the browser's: Asia/Shanghai here).
	b.waitText("status", "GMT+8")
	code := waitSMSCode(t, s.st, a.BoundPhone, 2)

	// A reload resumes the binding at its SMS step.
	open("reload the console at the SMS step")
	b.waitText("status", prefix("page.console.resumed"))
	b.visible("sms-code")
	b.typeInto("sms-code", code)
	b.click("sms-submit")
	b.waitText("status", tr("page.console.identityVirtual"))
	qrLoaded := `(() => { const i = document.getElementById("qr"); return i.src.startsWith("blob:") && i.complete && i.naturalWidth > 0; })()`
	b.waitJS("the QR image loads", qrLoaded, 20*time.Second)
	key := b.text("secret")

	// Again at the QR step: the same key comes back.
	open("reload the console at the QR step")
	b.waitText("status", prefix("page.console.resumed"))
	b.waitJS("the QR image loads after the reload", qrLoaded, 20*time.Second)
	if got := b.text("secret"); got != key {
		t.Fatalf("the resumed binding shows another key (%d characters, was %d)", len(got), len(key))
	}
	secret, err := mfa.DecodeSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	b.notCovered("code1")
	b.checkPage(l, "console-03-qr")
	now := awayFromBoundary()
	b.typeInto("code1", mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}))
	b.typeInto("code2", mfa.TOTP(secret, now, mfa.Params{}))
	b.click("scope-login")
	b.click("confirm")
	b.waitText("protection", tr("page.console.protection", "login", tr("page.console.on"), "operation", tr("page.console.off")))
	b.waitText("h-codes", tr("page.console.codesHeading", "account", a.ID))
	b.shownCodes()
	b.checkPage(l, "console-05-bound")
	b.click("codes-done")
	b.waitJS("the codes are put away", `document.getElementById("codes-panel").hidden`, 10*time.Second)
	open("reload the console after the binding")
	b.waitText("status", tr("page.console.accountLoaded", "id", a.ID))
	if eval[bool](b, `!document.getElementById("bind-pending").hidden`) {
		t.Error("the page offers to cancel a binding that is bound")
	}
}

// waitSMSCode waits until at least n SMS codes were sent to phone and
// returns the newest.
func waitSMSCode(t *testing.T, st store.Store, phone string, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs, err := st.ListOutbox(context.Background(), phone, 50)
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, m := range msgs {
			if m.Kind == activities.KindSMSCode {
				if c := sixDigits.FindString(m.Body); c != "" {
					codes = append(codes, c)
				}
			}
		}
		if len(codes) >= n {
			return codes[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d SMS codes sent to %s, want %d", len(codes), phone, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signInReviewer signs the reviewer page in with a pasted JWT, after
// signing out whoever was signed in.
func (b *browser) signInReviewer(token string) {
	b.t.Helper()
	b.waitJS("the sign-in card", `document.getElementById("auth-who").textContent !== ""`, 10*time.Second)
	if eval[bool](b, `!document.getElementById("auth-forget").hidden`) {
		b.click("auth-forget")
	}
	b.waitJS("the sign-in form", `!document.getElementById("auth-form").hidden`, 10*time.Second)
	b.typeInto("jwt", token)
	b.click("auth-use")
}

// quietLiveRegion checks that the status page's live region is not
// written while nothing changes: over two of the page's refreshes, the
// status line's node sees no mutation.
func (b *browser) quietLiveRegion() {
	b.t.Helper()
	eval[bool](b, `(() => {
		window.__statusMutations = 0;
		new MutationObserver((ms) => { window.__statusMutations += ms.length; })
			.observe(document.getElementById("status"), {childList: true, characterData: true, subtree: true, attributes: true});
		window.__fetches = 0;
		const f = window.fetch;
		window.fetch = (...args) => { window.__fetches++; return f(...args); };
		return true; })()`)
	b.waitJS("two refreshes of the status page", `window.__fetches >= 2`, 30*time.Second)
	// The answer of the second refresh is rendered by now (the third is due
	// 3 s after it).
	b.waitJS("the second refresh rendered", `document.getElementById("status").textContent !== ""`, 5*time.Second)
	if n := eval[int](b, `window.__statusMutations`); n != 0 {
		b.t.Errorf("the status line's live region was written %d times while nothing changed", n)
	}
}

// fourEyesInPage: an enterprise appeal needs two approvals. After the first
// (reviewer-a, through the API), the queue's default view leaves it out for
// reviewer-a and shows it to reviewer-b as needing a second approval, with
// the badge saying the filter's words; reviewer-b approves it in the page.
func fourEyesInPage(t *testing.T, b *browser, s *appealStack) {
	zh := func(key string, kv ...string) string { return catalogText(i18n.ZH, key, kv...) }
	putAccounts(t, s.st, demoEnterprise)
	s.bindDevice(t, demoEnterprise.ID)
	_, photo := writeJPEG(t, t.TempDir(), "p.jpg", 64, 48)
	id := fileEnterpriseAppealHTTP(t, s, demoEnterprise, photo)
	ta, tb := reviewerToken(t, "reviewer-a"), reviewerToken(t, "reviewer-b")
	httpJSON(t, http.MethodPost, s.url+"/v1/review/appeals/"+id+"/claim", ta, "", nil, http.StatusOK, nil)
	httpJSON(t, http.MethodPost, s.url+"/v1/review/appeals/"+id+"/decision", ta, "application/json", []byte(`{"decision":"approve"}`), http.StatusOK, nil)

	// reviewer-b: the default view (the work to do) shows it, with the badge.
	b.do("open the queue as reviewer-b", chromedp.Navigate(s.url+"/review?lang=zh-CN"), chromedp.WaitVisible(chromedp.ID("auth-who")))
	if !eval[bool](b, `document.getElementById("f-status").value === "todo"`) {
		t.Error("the queue's default view is not the work to do")
	}
	b.signInReviewer(tb)
	b.waitText("auth-who", zh("page.auth.signed_in", "sub", "reviewer-b"))
	b.waitInQueue(id)
	row := fmt.Sprintf(`document.querySelector('#queue tr[data-appeal-id=%s]')`, jsString(id))
	if got := eval[string](b, row+`.querySelector(".badge").textContent`); got != zh("page.st.second_approval") {
		t.Errorf("the badge says %q, want %q", got, zh("page.st.second_approval"))
	}
	if got := eval[string](b, `Array.from(document.getElementById("f-status").options).find((o) => o.value === "second_approval").textContent`); got != zh("page.st.second_approval") {
		t.Errorf("the filter says %q, the badge %q", got, zh("page.st.second_approval"))
	}
	// Every status the filter offers is worded as its badge.
	for _, st := range []string{"pending_review", "in_review", "cooling_down", "unbound", "rejected"} {
		if got := eval[string](b, fmt.Sprintf(`Array.from(document.getElementById("f-status").options).find((o) => o.value === %s).textContent`, jsString(st))); got != eval[string](b, fmt.Sprintf(`mfaflow.statusLabel(%s)`, jsString(st))) {
			t.Errorf("the filter says %q for %s, unlike its badge", got, st)
		}
	}
	b.waitText("queue", zh("page.queue.approved_by", "who", "reviewer-a"))
	b.checkPage(i18n.ZH, "11-queue-second-approval")
	b.cardsAt375("queue")

	// reviewer-a: not in the default view; in the "needs a second approval" one.
	b.signInReviewer(ta)
	b.waitText("auth-who", zh("page.auth.signed_in", "sub", "reviewer-a"))
	b.waitJS("the queue loaded for reviewer-a", `document.getElementById("status").className === "status ok"`, 30*time.Second)
	if eval[bool](b, row+` !== null`) {
		t.Error("the first approver's default queue lists the appeal that waits for a second approval")
	}
	b.do("the second-approval view", chromedp.Navigate(s.url+"/review?status=second_approval"), chromedp.WaitVisible(chromedp.ID("queue")))
	b.waitInQueue(id)

	// reviewer-b approves in the page: the appeal goes on to cool down.
	b.do("open the case", chromedp.Navigate(s.url+"/review/case?id="+id), chromedp.WaitVisible(chromedp.ID("auth-who")))
	b.signInReviewer(tb)
	b.waitText("assign-note", zh("page.case.n_second"))
	b.click("claim")
	b.waitText("assign-note", zh("page.case.n_mine"))
	b.click("d-approve")
	b.click("decide")
	b.waitText("action-result", strings.SplitN(zh("page.case.approved", "status", ""), "“", 2)[0])
	b.checkPage(i18n.ZH, "12-second-approval")
	b.cardsAt375("audit")
}

// cardsAt375 checks that at 375 px the list table of tbody #id shows each
// row as a card: rows are blocks, every cell is led by its column's name.
func (b *browser) cardsAt375(id string) {
	b.t.Helper()
	wide := eval[int](b, `window.innerWidth`)
	b.do("375 px wide", chromedp.EmulateViewport(375, 900))
	b.waitJS("the layout settles at 375 px", `window.innerWidth === 375`, 10*time.Second)
	js := fmt.Sprintf(`(() => { const rows = Array.from(document.getElementById(%s).rows);
		return rows.length > 0 && rows.every((r) => getComputedStyle(r).display === "block" && r.getBoundingClientRect().right <= 375 &&
			Array.from(r.cells).every((c) => c.colSpan > 1 || (c.dataset.label && getComputedStyle(c, "::before").content.includes(c.dataset.label)))); })()`, jsString(id))
	if !eval[bool](b, js) {
		b.t.Errorf("#%s at 375 px: its rows are not cards, or a cell lacks its column's name", id)
	}
	b.restoreWidth(wide)
}

// fileEnterpriseAppealHTTP files, documents and submits an enterprise
// appeal through the API and returns its id.
func fileEnterpriseAppealHTTP(t *testing.T, s *appealStack, a store.Account, photo []byte) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"account_id": a.ID, "applicant_type": "enterprise", "account_login": map[string]string{"kind": string(a.Logins[0].Kind), "id": a.Logins[0].ID},
		"bound_phone": a.BoundPhone, "name": a.RealName.Name, "id_number": a.RealName.IDNumber, "contact_phone": "13911113333",
		"company_name": a.Company.Name, "company_reg_number": a.Company.RegNumber,
	})
	var created struct {
		AppealID    string `json:"appeal_id"`
		AccessToken string `json:"access_token"`
	}
	httpJSON(t, http.MethodPost, s.url+"/v1/appeals", "", "application/json", body, http.StatusCreated, &created)
	for _, d := range []string{"id_holding_photo", "business_licence"} {
		httpJSON(t, http.MethodPut, s.url+"/v1/appeals/"+created.AppealID+"/documents/"+d, created.AccessToken, "image/jpeg", photo, http.StatusCreated, nil)
	}
	httpJSON(t, http.MethodPost, s.url+"/v1/appeals/"+created.AppealID+"/submit", created.AccessToken, "application/json", nil, http.StatusAccepted, nil)
	return created.AppealID
}

// appealJourney: the owner of j.applicant files an appeal, a reviewer
// approves it, the device is unbound; j.owner cancels another from the
// notice's link. All in language l.
func appealJourney(t *testing.T, b *browser, s *appealStack, l i18n.Lang, j journeyAccounts) {
	tr := func(key string, kv ...string) string { return catalogText(l, key, kv...) }
	shot := func(name string) { b.screenshot(string(l) + "-" + name) }
	files := t.TempDir()
	photo, photoBytes := writeJPEG(t, files, "id-photo.jpg", 96, 64)
	photoSum := sha256.Sum256(photoBytes)
	fake := filepath.Join(files, "not-a-photo.jpg")
	if err := os.WriteFile(fake, []byte("<html>this is not a photo</html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// (a) The applicant chooses the language and files the appeal.
	b.do("open the appeal form", chromedp.Navigate(s.url+"/appeal?lang="+string(l)), chromedp.WaitVisible(chromedp.ID("appeal-form")))
	if !eval[bool](b, `document.getElementById("company").hidden`) {
		t.Error("company fields shown for a personal appeal")
	}
	b.checkPage(l, "appeal-form")
	b.click("type-enterprise")
	b.waitText("company", tr("page.appeal.company_reg_number"))
	b.fillAppeal(j.applicant, "qq", j.loginID, j.applicant.RealName.Name, j.applicant.RealName.IDNumber)
	shot("01-form")
	b.click("file-appeal")
	b.waitJS("the appeal id in the URL", `/^\?id=apl_[A-Za-z0-9_-]+$/.test(location.search)`, 60*time.Second)
	id := eval[string](b, `new URLSearchParams(location.search).get("id") || ""`)
	b.waitText("filed", tr("page.appeal.filed", "id", id))
	b.waitText("status", tr("page.appeal.filed_status"))
	if !regexp.MustCompile(`^apl_[A-Za-z0-9_-]+$`).MatchString(id) {
		t.Fatalf("appeal id in the URL = %q", id)
	}
	token := eval[string](b, fmt.Sprintf(`sessionStorage.getItem(%s) || ""`, jsString("mfaflow.appeal."+id)))
	if len(token) < 43 {
		t.Fatalf("access token in sessionStorage = %q", token)
	}
	if href := eval[string](b, `location.href`); strings.Contains(href, token) || strings.Contains(href, "token") {
		t.Errorf("the URL carries the token: %s", href)
	}
	if !eval[bool](b, `document.getElementById("doc-row-business_licence").hidden && !document.getElementById("doc-row-id_holding_photo").hidden`) {
		t.Error("a personal appeal should ask for the ID-holding photo only")
	}
	if !eval[bool](b, `document.getElementById("submit-appeal").disabled`) {
		t.Error("submit is enabled before the upload")
	}
	b.checkPage(l, "02-upload-step")

	// A text file named .jpg is refused by content (415).
	b.do("choose the fake photo", chromedp.SetUploadFiles(chromedp.ID("file-id_holding_photo"), []string{fake}))
	b.waitText("doc-id_holding_photo", tr("page.appeal.e_415", "name", "not-a-photo.jpg"))
	// The real photo.
	b.do("choose the photo", chromedp.SetUploadFiles(chromedp.ID("file-id_holding_photo"), []string{photo}))
	uploadedText, _, _ := strings.Cut(tr("page.appeal.uploaded", "name", " id-photo.jpg"), "{size}")
	b.waitText("doc-id_holding_photo", uploadedText)
	b.waitText("doc-id_holding_photo", hex.EncodeToString(photoSum[:]))
	b.waitJS("submit enabled", `!document.getElementById("submit-appeal").disabled`, 5*time.Second)
	shot("03-uploaded")
	// A reload resumes the upload step from the token in sessionStorage.
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("upload-step")))
	b.waitText("doc-id_holding_photo", hex.EncodeToString(photoSum[:]))
	b.waitJS("submit enabled after the reload", `!document.getElementById("submit-appeal").disabled && document.getElementById("appeal-form").hidden`, 10*time.Second)
	b.click("submit-appeal")
	b.waitLocation("/appeal/status?id="+id, 20*time.Second)
	b.waitText("status-words", tr("page.st.pending_review"))
	b.waitText("documents", hex.EncodeToString(photoSum[:]))
	b.waitText("timeline", tr("page.st.pending_review"))
	// The workflow's notes in the page's language, times in the reader's zone.
	b.waitText("timeline", tr("page.note.submitted"))
	b.waitText("timeline", tr("page.note.doc_received", "doc", tr("page.doc.id_holding_photo")))
	filedNote, _, _ := strings.Cut(tr("page.note.filed"), "{time}")
	b.waitText("timeline", filedNote)
	if tl := b.text("timeline"); strings.Contains(tl, " UTC") || strings.Contains(tl, "submitted for review") {
		t.Errorf("the timeline shows the workflow's English notes: %q", tl)
	}
	b.quietLiveRegion()
	b.checkPage(l, "04-status-pending")

	// (b) A reviewer pastes a JWT, finds the appeal in the queue and opens it.
	b.do("open the queue", chromedp.Navigate(s.url+"/review"), chromedp.WaitVisible(chromedp.ID("auth-who")))
	if eval[bool](b, `!document.getElementById("auth-forget").hidden`) {
		// The reviewer of the other language's journey signs out; the
		// queue as a signed-out reviewer first sees it.
		b.click("auth-forget")
		b.do("reload the queue", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("auth-who")))
	}
	b.waitText("queue", tr("page.queue.sign_in"))
	b.checkPage(l, "05-queue-signed-out")
	b.signInReviewer(reviewerToken(t, "reviewer-web"))
	b.waitText("auth-who", tr("page.auth.signed_in", "sub", "reviewer-web")+" (reviewer)")
	b.waitInQueue(id)
	b.waitText("queue", tr("page.st.pending_review"))
	b.checkPage(l, "05-queue")
	b.do("open the case", chromedp.Click(chromedp.CSS(`a.case-link[href="/review/case?id=`+id+`"]`)), chromedp.WaitVisible(chromedp.ID("case")))
	b.waitText("status", tr("page.case.loaded", "status", tr("page.st.pending_review")))
	b.waitJS("the ID-holding photo renders",
		`(() => { const i = document.getElementById("doc-img-id_holding_photo"); return !!i && i.complete && i.naturalWidth === 96 && i.naturalHeight === 64; })()`, 20*time.Second)
	name := []rune(j.applicant.RealName.Name)
	for _, want := range []string{string(name[0]) + "*", MaskIDForTest(j.applicant.RealName.IDNumber), j.applicant.BoundPhone[:3] + "****" + j.applicant.BoundPhone[7:], "QQ " + j.loginID} {
		b.waitText("applicant", want)
	}
	if strings.Contains(b.text("case"), j.applicant.RealName.Name) || strings.Contains(b.text("case"), j.applicant.RealName.IDNumber) {
		t.Error("the case page shows unmasked PII")
	}
	if src := b.attr("doc-img-id_holding_photo", "src"); !strings.HasPrefix(src, "/v1/review/documents/"+id+"/id_holding_photo?") {
		t.Errorf("image src = %q", src)
	}
	b.checkPage(l, "06-case")
	b.cardsAt375("audit")
	b.click("claim")
	b.waitText("action-result", tr("page.case.claimed", "status", tr("page.st.in_review")))
	b.waitText("assign-note", tr("page.case.n_mine"))
	b.waitText("audit", "document.view")
	b.waitText("audit", tr("page.action.document_view"))
	b.click("d-approve")
	b.click("decide")
	b.waitText("action-result", strings.SplitN(tr("page.case.approved", "status", ""), "“", 2)[0])
	b.checkPage(l, "07-approved")
	// Forgetting the token takes the case, its PII and documents, off the page.
	b.click("auth-forget")
	b.waitJS("the case leaves the page", `document.getElementById("case").hidden && document.getElementById("actions").hidden
		&& document.getElementById("applicant").childElementCount === 0 && document.getElementById("documents").childElementCount === 0`, 10*time.Second)
	b.waitText("status", tr("page.case.sign_in"))

	// (c) The applicant's status page shows the device unbound.
	b.do("open the status page", chromedp.Navigate(s.url+"/appeal/status?id="+id), chromedp.WaitVisible(chromedp.ID("appeal-card")))
	b.waitJS("the appeal is unbound", fmt.Sprintf(`document.getElementById("status-words").textContent === %s`, jsString(tr("page.st.unbound"))), 30*time.Second)
	b.waitText("status-explain", tr("page.st_explain.unbound"))
	b.waitText("timeline", tr("page.note.unbound"))
	if tl := b.text("timeline"); strings.Contains(tl, " UTC") {
		t.Errorf("the timeline shows a note of the workflow in English: %q", tl)
	}
	if !eval[bool](b, `document.getElementById("cancel").hidden`) {
		t.Error("an unbound appeal offers Cancel")
	}
	if strings.Contains(b.text("timeline"), "reviewer-web") {
		t.Error("the applicant's timeline names the reviewer")
	}
	b.checkPage(l, "08-unbound")

	// The console page shows the account without a device.
	b.do("open the console after the unbind", chromedp.Navigate(s.url+"/console?account="+j.applicant.ID), chromedp.WaitVisible(chromedp.ID("account")))
	b.waitText("status", tr("page.console.accountLoaded", "id", j.applicant.ID))
	b.waitText("devices", tr("page.console.noDevice"))
	b.waitText("protection", tr("page.console.protection", "login", tr("page.console.off"), "operation", tr("page.console.off")))
	shot("console-09-unbound")

	// The account owner cancels another appeal from the notice's link;
	// opening the link cancels nothing.
	ownerID, ownerToken := fileAppealHTTP(t, s, j.owner, photoBytes)
	link := s.cancelLink(t, j.owner)
	b.do("open the cancel link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("owner-cancel-button")))
	b.waitText("owner-cancel", ownerID)
	b.waitText("h-cancel", tr("page.owner.heading"))
	if st := appealStatusHTTP(t, s, ownerID, ownerToken); st != workflows.AppealPending {
		t.Fatalf("after opening the cancel link the appeal is %s, want %s", st, workflows.AppealPending)
	}
	b.checkPage(l, "09-owner-cancel")
	b.click("owner-cancel-button")
	b.waitText("result", tr("page.owner.done"))
	shot("10-owner-cancelled")
	if st := appealStatusHTTP(t, s, ownerID, ownerToken); st != workflows.AppealCancelled {
		t.Fatalf("after the owner's cancel the appeal is %s", st)
	}
}

// waitInQueue refreshes the queue until appeal id shows (the workflow
// index lags a little).
func (b *browser) waitInQueue(id string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !eval[bool](b, fmt.Sprintf(`document.getElementById("queue").textContent.includes(%s)`, jsString(id))) {
		if time.Now().After(deadline) {
			b.t.Fatalf("appeal %s never showed in the queue; status line %q", id, b.statusNoFail())
		}
		time.Sleep(300 * time.Millisecond)
		b.click("refresh")
	}
}

// MaskIDForTest masks an ID number as the API does: the first 4 and last 4
// characters kept.
func MaskIDForTest(s string) string {
	return s[:4] + strings.Repeat("*", len(s)-8) + s[len(s)-4:]
}

// fileAppealHTTP files, documents and submits a personal appeal through the
// API and returns its id and access token.
func fileAppealHTTP(t *testing.T, s *appealStack, a store.Account, photo []byte) (id, token string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"account_id": a.ID, "applicant_type": "personal", "account_login": map[string]string{"kind": string(a.Logins[0].Kind), "id": a.Logins[0].ID},
		"bound_phone": a.BoundPhone, "name": a.RealName.Name, "id_number": a.RealName.IDNumber, "contact_phone": "13911113333",
	})
	var created struct {
		AppealID    string `json:"appeal_id"`
		AccessToken string `json:"access_token"`
	}
	httpJSON(t, http.MethodPost, s.url+"/v1/appeals", "", "application/json", body, http.StatusCreated, &created)
	httpJSON(t, http.MethodPut, s.url+"/v1/appeals/"+created.AppealID+"/documents/id_holding_photo", created.AccessToken, "image/jpeg", photo, http.StatusCreated, nil)
	httpJSON(t, http.MethodPost, s.url+"/v1/appeals/"+created.AppealID+"/submit", created.AccessToken, "application/json", nil, http.StatusAccepted, nil)
	return created.AppealID, created.AccessToken
}

func appealStatusHTTP(t *testing.T, s *appealStack, id, token string) string {
	t.Helper()
	var out struct {
		Status string `json:"status"`
	}
	httpJSON(t, http.MethodGet, s.url+"/v1/appeals/"+id, token, "", nil, http.StatusOK, &out)
	return out.Status
}

func httpJSON(t *testing.T, method, url, token, contentType string, body []byte, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, res.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// cancelLinkPattern matches the owner's cancel link of a notice: the full
// owner-cancel page link (e-mail) or the short /c/… one (SMS).
var cancelLinkPattern = regexp.MustCompile(`https?://[^\s"<>]+(?:/owner-cancel\?token=[A-Za-z0-9_-]+|/c/[A-Za-z0-9_-]{16})`)

// cancelLink waits for the notice with the owner's cancel link sent to the
// account's phone or e-mail.
func (s *appealStack) cancelLink(t *testing.T, a store.Account) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, to := range []string{a.BoundPhone, a.Email} {
			msgs, err := s.st.ListOutbox(context.Background(), to, 20)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if l := cancelLinkPattern.FindString(m.Body); l != "" {
					if !strings.HasPrefix(l, s.url+"/") {
						t.Fatalf("cancel link %s is not on this server", l)
					}
					return l
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cancel link sent to %s or %s", a.BoundPhone, a.Email)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

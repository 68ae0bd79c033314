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

	"github.com/chromedp/chromedp"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/console"
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
// notifier, and the API outside dev mode with the public pages.
type appealStack struct {
	st   store.Store
	keys *mfa.Keyring
	url  string
}

func startAppealStack(t *testing.T) *appealStack {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	srv := api.NewServer(api.Deps{
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
		JWT:              &auth.Verifier{Keys: auth.HS256(string(pagesJWTSecret))},
		Logger:           slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Pages:            web.NewPages(web.PagesConfig{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}),
	})
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	s := &appealStack{st: st, keys: keys, url: url}
	putAccounts(t, st, demoPersonal, demoUnverified, demoOwner)
	for _, a := range []string{demoPersonal.ID, demoUnverified.ID, demoOwner.ID} {
		s.bindDevice(t, a)
	}
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
	b.screenshot("02-real-name-not-verified")
}

// TestAppealPagesInBrowser drives the public pages in headless Chromium
// against the whole stack: an applicant files a personal appeal on the form
// and uploads a real JPEG (a non-image first, refused), submits; a reviewer
// signs in with a pasted JWT, finds the appeal in the queue, sees the photo
// rendered through its signed link, claims and approves; the applicant's
// status page shows it unbound. Then an account owner cancels another
// appeal with the link from the notice.
func TestAppealPagesInBrowser(t *testing.T) {
	b := newBrowser(t)
	s := startAppealStack(t)
	defer b.checkFaults()
	files := t.TempDir()
	photo, photoBytes := writeJPEG(t, files, "id-photo.jpg", 96, 64)
	photoSum := sha256.Sum256(photoBytes)
	fake := filepath.Join(files, "not-a-photo.jpg")
	if err := os.WriteFile(fake, []byte("<html>this is not a photo</html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// (a) The applicant files the appeal.
	b.do("open the appeal form", chromedp.Navigate(s.url+"/appeal"), chromedp.WaitVisible(chromedp.ID("appeal-form")))
	if !eval[bool](b, `document.getElementById("company").hidden`) {
		t.Error("company fields shown for a personal appeal")
	}
	b.click("type-enterprise")
	b.waitText("company", "Unified social credit code")
	b.fillAppeal(demoPersonal, "qq", "10001", "张三", "11010519491231002X")
	b.screenshot("01-form")
	b.click("file-appeal")
	b.waitText("filed", "is filed")
	b.waitText("status", "Appeal filed.")
	id := eval[string](b, `new URLSearchParams(location.search).get("id") || ""`)
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
	b.screenshot("02-upload-step")

	// A text file named .jpg is refused by content (415).
	b.do("choose the fake photo", chromedp.SetUploadFiles(chromedp.ID("file-id_holding_photo"), []string{fake}))
	b.waitText("doc-id_holding_photo", "is not accepted: send a JPEG, PNG or PDF file")
	// The real photo.
	b.do("choose the photo", chromedp.SetUploadFiles(chromedp.ID("file-id_holding_photo"), []string{photo}))
	b.waitText("doc-id_holding_photo", "Uploaded id-photo.jpg")
	b.waitText("doc-id_holding_photo", hex.EncodeToString(photoSum[:]))
	b.waitJS("submit enabled", `!document.getElementById("submit-appeal").disabled`, 5*time.Second)
	b.screenshot("03-uploaded")
	// A reload resumes the upload step from the token in sessionStorage.
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("upload-step")))
	b.waitText("doc-id_holding_photo", hex.EncodeToString(photoSum[:]))
	b.waitJS("submit enabled after the reload", `!document.getElementById("submit-appeal").disabled && document.getElementById("appeal-form").hidden`, 10*time.Second)
	b.click("submit-appeal")
	b.waitLocation("/appeal/status?id="+id, 20*time.Second)
	b.waitText("status-words", "Submitted, waiting for review")
	b.waitText("documents", hex.EncodeToString(photoSum[:]))
	b.waitText("timeline", "Submitted")
	b.screenshot("04-status-pending")

	// (b) A reviewer pastes a JWT, finds the appeal in the queue and opens it.
	b.do("open the queue", chromedp.Navigate(s.url+"/review"), chromedp.WaitVisible(chromedp.ID("auth-form")))
	b.waitText("auth-who", "Not signed in.")
	b.typeInto("jwt", reviewerToken(t, "reviewer-web"))
	b.click("auth-use")
	b.waitText("auth-who", "Signed in as reviewer-web (reviewer)")
	deadline := time.Now().Add(30 * time.Second)
	for !eval[bool](b, fmt.Sprintf(`document.getElementById("queue").textContent.includes(%s)`, jsString(id))) {
		if time.Now().After(deadline) {
			t.Fatalf("appeal %s never showed in the queue; status line %q", id, b.statusNoFail())
		}
		time.Sleep(300 * time.Millisecond)
		b.click("refresh")
	}
	b.waitText("queue", "Submitted, waiting for review")
	b.screenshot("05-queue")
	b.do("open the case", chromedp.Click(chromedp.CSS(`a.case-link[href="/review/case?id=`+id+`"]`)), chromedp.WaitVisible(chromedp.ID("case")))
	b.waitText("status", "Case loaded")
	b.waitJS("the ID-holding photo renders",
		`(() => { const i = document.getElementById("doc-img-id_holding_photo"); return !!i && i.complete && i.naturalWidth === 96 && i.naturalHeight === 64; })()`, 20*time.Second)
	for _, want := range []string{"张*", "1101**********002X", "138****8000", "QQ 10001"} {
		b.waitText("applicant", want)
	}
	if strings.Contains(b.text("case"), "张三") || strings.Contains(b.text("case"), "11010519491231002X") {
		t.Error("the case page shows unmasked PII")
	}
	if src := b.attr("doc-img-id_holding_photo", "src"); !strings.HasPrefix(src, "/v1/review/documents/"+id+"/id_holding_photo?") {
		t.Errorf("image src = %q", src)
	}
	b.screenshot("06-case")
	b.click("claim")
	b.waitText("action-result", "Claimed")
	b.waitText("assign-note", "You hold this appeal.")
	b.waitText("audit", "document.view")
	b.click("d-approve")
	b.click("decide")
	b.waitText("action-result", "Approved")
	b.screenshot("07-approved")

	// (c) The applicant's status page shows the device unbound.
	b.do("open the status page", chromedp.Navigate(s.url+"/appeal/status?id="+id), chromedp.WaitVisible(chromedp.ID("appeal-card")))
	b.waitJS("the appeal is unbound", `document.getElementById("status-words").textContent.startsWith("Unbound")`, 30*time.Second)
	b.waitText("status-explain", "bind a new MFA device")
	if !eval[bool](b, `document.getElementById("cancel").hidden`) {
		t.Error("an unbound appeal offers Cancel")
	}
	if strings.Contains(b.text("timeline"), "reviewer-web") {
		t.Error("the applicant's timeline names the reviewer")
	}
	b.screenshot("08-unbound")

	// The account owner cancels another appeal from the notice's link;
	// opening the link cancels nothing.
	ownerID, ownerToken := fileAppealHTTP(t, s, demoOwner, photoBytes)
	link := s.cancelLink(t, demoOwner.BoundPhone)
	b.do("open the cancel link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("owner-cancel-button")))
	b.waitText("owner-cancel", ownerID)
	if st := appealStatusHTTP(t, s, ownerID, ownerToken); st != workflows.AppealPending {
		t.Fatalf("after opening the cancel link the appeal is %s, want %s", st, workflows.AppealPending)
	}
	b.screenshot("09-owner-cancel")
	b.click("owner-cancel-button")
	b.waitText("result", "The appeal is cancelled.")
	b.screenshot("10-owner-cancelled")
	if st := appealStatusHTTP(t, s, ownerID, ownerToken); st != workflows.AppealCancelled {
		t.Fatalf("after the owner's cancel the appeal is %s", st)
	}
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

var cancelLinkPattern = regexp.MustCompile(`https?://[^\s"<>]+/owner-cancel\?token=[A-Za-z0-9_-]+`)

// cancelLink waits for the notice with the owner's cancel link sent to phone.
func (s *appealStack) cancelLink(t *testing.T, phone string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs, err := s.st.ListOutbox(context.Background(), phone, 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if l := cancelLinkPattern.FindString(m.Body); l != "" {
				if !strings.HasPrefix(l, s.url+"/appeals/") {
					t.Fatalf("cancel link %s is not on this server", l)
				}
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cancel link sent to %s", phone)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

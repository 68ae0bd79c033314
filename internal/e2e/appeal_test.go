package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/internal/doccheck/doctest"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// jpeg returns a real JPEG followed by random bytes, n bytes in all (at
// least the image): uploads must pass doccheck.
func jpeg(n int) []byte { return doctest.JPEG(n) }

// pdf returns a well-formed PDF without active content, of at least n bytes.
func pdf(n int) []byte { return doctest.PDF(n) }

// raw sends a request with a raw body and returns status and decoded JSON.
func (s *stack) raw(method, path, token, contentType string, body io.Reader, length int64) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.apis[0].URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	req.ContentLength = length
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, map[string]any{"transport_error": err.Error()}
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	_ = jsonUnmarshal(raw, &out)
	return resp.StatusCode, out
}

func (s *stack) objects(appealID string) []string {
	s.t.Helper()
	keys, err := s.blobs.Keys(context.Background(), "appeals/"+appealID+"/")
	if err != nil {
		s.t.Fatal(err)
	}
	return keys
}

// staff signs a reviewer (or admin) JWT.
func staff(t *testing.T, sub, accountID string, roles ...string) string {
	t.Helper()
	tok, err := auth.SignHS256(jwtSecret, sub, roles, accountID, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// bindDirect stores an active virtual device for acct.
func (s *stack) bindDirect(acct string) {
	s.t.Helper()
	secret, _ := mfa.NewSecret(nil)
	id := "dev-direct-" + acct
	sealed, _ := s.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	if _, err := s.st.CreateDevice(context.Background(), store.Device{ID: id, AccountID: acct, Type: store.Virtual, Secret: sealed, Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		s.t.Fatal(err)
	}
}

// waitStatus polls the applicant's view until the appeal reaches status.
func (s *stack) waitStatus(appealID, token, status string) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var out map[string]any
	for time.Now().Before(deadline) {
		_, out, _ = s.call(0, http.MethodGet, "/v1/appeals/"+appealID, token, nil)
		if out["status"] == status {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("appeal %s never reached %s: %v", appealID, status, out)
	return nil
}

func personalAppeal(acct, phone, idNumber string) map[string]any {
	return map[string]any{
		"account_id": acct, "applicant_type": "personal",
		"account_login": map[string]string{"kind": "qq", "id": "10" + phone[len(phone)-6:]},
		"bound_phone":   phone, "name": "张三", "id_number": idNumber, "contact_phone": "13911112222",
	}
}

// TestPersonalAppeal files a personal appeal through the API and follows it
// to the unbind on real Temporal, PostgreSQL and MinIO, with every hostile
// input refused on the way.
func TestPersonalAppeal(t *testing.T) {
	st := storetest.Postgres(t)
	s := newStackWith(t, st, 1, api.AppealConfig{Cooldown: 0, Retention: 4 * time.Second})
	const acct, phone, idNum = "e2e-appeal-p", "13800000011", "11010519491231002X"

	// Eligibility answers at creation.
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal("nobody-here", phone, idNum)); code != http.StatusUnprocessableEntity {
		t.Fatalf("unknown account = %d %v", code, out)
	}
	s.putAccount(acct, phone, store.LoginMFA)
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum)); code != http.StatusUnprocessableEntity || errCode(out) != "no_mfa_bound" {
		t.Fatalf("no device = %d %v", code, out)
	}
	s.bindDirect(acct)
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, "110101199003071233")); code != http.StatusUnprocessableEntity || errCode(out) != "identity_mismatch" {
		t.Fatalf("wrong ID number = %d %v", code, out)
	}
	bad := personalAppeal(acct, phone, "110101194912310021")
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", bad); code != http.StatusUnprocessableEntity || errCode(out) != "invalid_field" || out["error"].(map[string]any)["field"] != "id_number" {
		t.Fatalf("bad checksum = %d %v", code, out)
	}
	code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum))
	if code != http.StatusCreated || out["status"] != workflows.AppealCollecting {
		t.Fatalf("create = %d %v", code, out)
	}
	id, token := out["appeal_id"].(string), out["access_token"].(string)
	if len(token) < 43 {
		t.Fatalf("access token %d chars: under 256 bits", len(token))
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum)); code != http.StatusConflict {
		t.Fatalf("second open appeal = %d %v", code, out)
	}

	// Hostile uploads leave no object behind.
	docPath := "/v1/appeals/" + id + "/documents/id_holding_photo"
	hostile := []struct {
		name, ct string
		body     []byte
		want     int
	}{
		{"html named jpeg", "image/jpeg", []byte("<html><script>alert(1)</script></html>"), http.StatusUnsupportedMediaType},
		{"zip named jpeg", "image/jpeg", append([]byte("PK\x03\x04"), make([]byte, 100)...), http.StatusUnsupportedMediaType},
		{"pdf labelled jpeg", "image/jpeg", pdf(100), http.StatusUnsupportedMediaType},
		{"text/html", "text/html", []byte("<html></html>"), http.StatusUnsupportedMediaType},
	}
	for _, h := range hostile {
		if code, out := s.raw(http.MethodPut, docPath, token, h.ct, bytes.NewReader(h.body), int64(len(h.body))); code != h.want {
			t.Fatalf("%s = %d %v, want %d", h.name, code, out, h.want)
		}
	}
	// 50 MB declared: refused before reading.
	if code, out := s.raw(http.MethodPut, docPath, token, "image/jpeg", io.LimitReader(zeroReader{}, 50<<20), 50<<20); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("50 MB = %d %v", code, out)
	}
	// 11 MB without a length (chunked): refused at the cap.
	if code, out := s.raw(http.MethodPut, docPath, token, "image/jpeg", io.MultiReader(bytes.NewReader(jpeg(16)), io.LimitReader(zeroReader{}, 11<<20)), -1); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("11 MB chunked = %d %v", code, out)
	}
	// A truncated upload: the connection closes halfway through.
	truncatedUpload(t, s.apis[0].URL+docPath, token)
	// Another appeal's token.
	other := "e2e-appeal-other"
	s.putAccount(other, "13800000012", store.LoginMFA)
	s.bindDirect(other)
	_, o2, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(other, "13800000012", idNum))
	otherToken, _ := o2["access_token"].(string)
	if code, out := s.raw(http.MethodPut, docPath, otherToken, "image/jpeg", bytes.NewReader(jpeg(1000)), 1000); code != http.StatusForbidden {
		t.Fatalf("another appeal's token = %d %v", code, out)
	}
	if keys := s.objects(id); len(keys) != 0 {
		t.Fatalf("refused uploads left objects: %v", keys)
	}
	if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusUnprocessableEntity || errCode(out) != "documents_missing" {
		t.Fatalf("submit without documents = %d %v", code, out)
	}

	// A real photo, uploaded twice: the second replaces the first.
	_ = uploadOK(t, s, docPath, token, jpeg(200_000))
	photo := jpeg(300_000)
	sum := uploadOK(t, s, docPath, token, photo)
	if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted || out["status"] != workflows.AppealPending {
		t.Fatalf("submit = %d %v", code, out)
	}
	if code, out := s.raw(http.MethodPut, docPath, token, "image/jpeg", bytes.NewReader(jpeg(1000)), 1000); code != http.StatusConflict || errCode(out) != "wrong_state" {
		t.Fatalf("upload after submit = %d %v", code, out)
	}
	// The workflow refused that upload after it was stored, and the API
	// removed it; the replaced first photo is removed in the background.
	for until := time.Now().Add(10 * time.Second); len(s.objects(id)) > 1 && time.Now().Before(until); {
		time.Sleep(100 * time.Millisecond)
	}
	if keys := s.objects(id); len(keys) != 1 {
		t.Fatalf("objects after the refused upload: %v, want the accepted photo alone", keys)
	}
	// The old channels hear of the appeal, with a cancel link.
	var filed string
	for i := 0; i < 100 && filed == ""; i++ {
		msgs, _ := st.ListOutbox(context.Background(), acct+"@example.com", 20)
		for _, m := range msgs {
			if strings.Contains(m.Body, "owner-cancel") {
				filed = m.Body
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if filed == "" {
		msgs, _ := st.ListOutbox(context.Background(), "", 50)
		t.Fatalf("no appeal notice with a cancel link to %s: %+v", phone, msgs)
	}

	// Review: the queue, the masked case, the document through its link.
	rev := staff(t, "rev-1", "", auth.RoleReviewer)
	var queued bool
	for i := 0; i < 100 && !queued; i++ {
		_, q, _ := s.call(0, http.MethodGet, "/v1/review/appeals?status=pending_review", rev, nil)
		for _, it := range q["appeals"].([]any) {
			queued = queued || it.(map[string]any)["appeal_id"] == id
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !queued {
		t.Fatal("the appeal never appeared in the review queue")
	}
	code, cs, _ := s.call(0, http.MethodGet, "/v1/review/appeals/"+id, rev, nil)
	if code != http.StatusOK {
		t.Fatalf("case = %d %v", code, cs)
	}
	app := cs["applicant"].(map[string]any)
	if app["id_number"] != "1101**********002X" || app["name"] != "张*" {
		t.Fatalf("case shows %v, want masked PII", app)
	}
	doc := cs["documents"].([]any)[0].(map[string]any)
	if doc["sha256"] != sum {
		t.Fatalf("case document hash %v, want %s", doc["sha256"], sum)
	}
	resp, err := s.client.Get(s.apis[0].URL + doc["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, photo) {
		t.Fatalf("document link = %d, %d bytes", resp.StatusCode, len(got))
	}
	u, _ := url.Parse(doc["url"].(string))
	q := u.Query()
	q.Set("r", "someone-else")
	u.RawQuery = q.Encode()
	if resp, _ := s.client.Get(s.apis[0].URL + u.String()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("tampered link = %d", resp.StatusCode)
	}

	// Nobody reviews their own account's appeal.
	self := staff(t, "rev-self", acct, auth.RoleReviewer)
	if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", self, nil); code != http.StatusForbidden {
		t.Fatalf("self claim = %d %v", code, out)
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil); code != http.StatusOK || out["status"] != workflows.AppealInReview {
		t.Fatalf("claim = %d %v", code, out)
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]any{"decision": "approve"}); code != http.StatusOK {
		t.Fatalf("approve = %d %v", code, out)
	}
	view := s.waitStatus(id, token, workflows.AppealUnbound)
	for _, e := range view["timeline"].([]any) {
		if strings.Contains(fmt.Sprint(e), "rev-1") {
			t.Fatalf("the applicant's timeline names the reviewer: %v", e)
		}
	}

	// Unbound exactly once; the account has no device and can bind again.
	code, mfaView := s.console(http.MethodGet, "/v1/accounts/"+acct+"/mfa", nil)
	if code != http.StatusOK || len(mfaView["devices"].([]any)) != 0 {
		t.Fatalf("devices after unbind = %d %v", code, mfaView)
	}
	es, _ := st.ListAudit(context.Background(), store.AuditFilter{Subject: id, Limit: 500})
	unbinds, views := 0, 0
	for _, e := range es {
		switch e.Action {
		case "appeal.unbind":
			unbinds++
		case "document.view":
			if e.Outcome == "ok" {
				views++
			}
		}
	}
	if unbinds != 1 || views != 1 {
		t.Fatalf("audit: %d unbind entries, %d document views; want 1 and 1", unbinds, views)
	}
	if code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/mfa/bindings", map[string]any{"device_type": "virtual"}); code != http.StatusCreated {
		t.Fatalf("a new binding after the unbind = %d %v", code, out)
	}

	// No PII in history or search attributes.
	hist := historyJSON(t, s, id)
	for name, v := range map[string]string{"name": "张三", "ID number": idNum, "ID number (escaped)": "1231002X"} {
		if bytes.Contains(hist, []byte(v)) {
			t.Errorf("workflow history holds the %s in plain text", name)
		}
	}
	desc, err := s.ts.GetDefaultClient().DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	sa := fmt.Sprint(desc.GetWorkflowExecutionInfo().GetSearchAttributes())
	for _, v := range []string{"张三", idNum, phone} {
		if strings.Contains(sa, v) {
			t.Errorf("search attributes hold PII %q", v)
		}
	}

	// Retention: the documents are deleted and the deletion recorded.
	deadline := time.Now().Add(30 * time.Second)
	for len(s.objects(id)) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if keys := s.objects(id); len(keys) != 0 {
		t.Fatalf("documents still stored after retention: %v", keys)
	}
}

// TestEnterpriseAppealFourEyes needs two distinct reviewers.
func TestEnterpriseAppealFourEyes(t *testing.T) {
	st := storetest.SQLite(t)
	s := newStackWith(t, st, 1, api.AppealConfig{Cooldown: 0})
	const acct, phone = "e2e-appeal-e", "13800000021"
	code, out, _ := s.call(0, http.MethodPut, "/v1/admin/accounts/"+acct, s.admin, map[string]any{
		"type": "enterprise", "bound_phone": phone, "email": "ops@example.com",
		"logins":    []map[string]string{{"kind": "email", "id": "ops@example.com"}},
		"real_name": map[string]any{"verified": true, "name": "李四", "id_number": "110101199003071233"},
		"company":   map[string]any{"name": "示例科技有限公司", "reg_number": "91350100M000100Y43"},
	})
	if code != http.StatusCreated {
		t.Fatalf("put account = %d %v", code, out)
	}
	s.bindDirect(acct)
	req := map[string]any{
		"account_id": acct, "applicant_type": "enterprise", "account_login": map[string]string{"kind": "email", "id": "ops@example.com"},
		"bound_phone": phone, "name": "李四", "id_number": "110101199003071233", "contact_phone": "13911113333",
		"company_name": "示例科技有限公司", "company_reg_number": "91350100M000100Y44",
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", req); code != http.StatusUnprocessableEntity || out["error"].(map[string]any)["field"] != "company_reg_number" {
		t.Fatalf("bad USCC = %d %v", code, out)
	}
	req["company_reg_number"] = "91350100M000100Y43"
	code, out, _ = s.call(0, http.MethodPost, "/v1/appeals", "", req)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, out)
	}
	id, token := out["appeal_id"].(string), out["access_token"].(string)
	if docs := out["required_documents"].([]any); len(docs) != 2 {
		t.Fatalf("required documents = %v", docs)
	}
	uploadOK(t, s, "/v1/appeals/"+id+"/documents/business_licence", token, pdf(50_000))
	uploadOK(t, s, "/v1/appeals/"+id+"/documents/id_holding_photo", token, jpeg(50_000))
	if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, out)
	}
	r1, r2 := staff(t, "rev-1", "", auth.RoleReviewer), staff(t, "rev-2", "", auth.RoleReviewer)
	mustOK := func(tok, path string, body any) map[string]any {
		t.Helper()
		code, out, _ := s.call(0, http.MethodPost, path, tok, body)
		if code != http.StatusOK {
			t.Fatalf("POST %s = %d %v", path, code, out)
		}
		return out
	}
	mustOK(r1, "/v1/review/appeals/"+id+"/claim", nil)
	if out := mustOK(r1, "/v1/review/appeals/"+id+"/decision", map[string]any{"decision": "approve"}); out["status"] != workflows.AppealInReview {
		t.Fatalf("after one approval: %v, want still in review", out)
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", r1, nil); code != http.StatusConflict || errCode(out) != "same_reviewer" {
		t.Fatalf("the same reviewer again = %d %v", code, out)
	}
	mustOK(r2, "/v1/review/appeals/"+id+"/claim", nil)
	mustOK(r2, "/v1/review/appeals/"+id+"/decision", map[string]any{"decision": "approve"})
	s.waitStatus(id, token, workflows.AppealUnbound)
}

// TestDeviceUsedInCoolDownCancels: whoever still has the device is the owner.
func TestDeviceUsedInCoolDownCancels(t *testing.T) {
	st := storetest.SQLite(t)
	s := newStackWith(t, st, 1, api.AppealConfig{Cooldown: time.Hour})
	const acct, phone, idNum = "e2e-appeal-c", "13800000031", "11010519491231002X"
	s.putAccount(acct, phone, store.LoginMFA)
	secret, _ := mfa.NewSecret(nil)
	sealed, _ := s.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), "dev-cool"))
	ctx := context.Background()
	if _, err := st.CreateDevice(ctx, store.Device{ID: "dev-cool", AccountID: acct, Type: store.Virtual, Secret: sealed, Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		t.Fatal(err)
	}
	_, _ = st.SetProtection(ctx, acct, store.Protection{Login: true})
	_, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum))
	id, token := out["appeal_id"].(string), out["access_token"].(string)
	uploadOK(t, s, "/v1/appeals/"+id+"/documents/id_holding_photo", token, jpeg(10_000))
	s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0)
	rev := staff(t, "rev-1", "", auth.RoleReviewer)
	s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil)
	s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]any{"decision": "approve"})
	s.waitStatus(id, token, workflows.AppealCoolingDown)
	if code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/mfa/verify", map[string]any{"code": mfa.TOTP(secret, time.Now(), mfa.Params{}), "purpose": "login"}); code != http.StatusOK {
		t.Fatalf("verify with the 'lost' device = %d %v", code, out)
	}
	s.waitStatus(id, token, workflows.AppealCancelled)
	if code, out := s.raw(http.MethodPut, "/v1/appeals/"+id+"/documents/id_holding_photo", token, "image/jpeg", bytes.NewReader(jpeg(1000)), 1000); code != http.StatusConflict || errCode(out) != "wrong_state" {
		t.Fatalf("upload to the cancelled appeal = %d %v", code, out)
	}
	if d, _ := st.GetDevice(ctx, "dev-cool"); d.Status != store.DeviceActive {
		t.Fatalf("device after the cancelled appeal = %s", d.Status)
	}
}

func uploadOK(t *testing.T, s *stack, path, token string, body []byte) string {
	t.Helper()
	ct := "image/jpeg"
	if bytes.HasPrefix(body, []byte("%PDF-")) {
		ct = "application/pdf"
	}
	code, out := s.raw(http.MethodPut, path, token, ct, bytes.NewReader(body), int64(len(body)))
	sum := sha256.Sum256(body)
	if code != http.StatusCreated || out["sha256"] != hex.EncodeToString(sum[:]) || int(out["size"].(float64)) != len(body) {
		t.Fatalf("upload %s = %d %v", path, code, out)
	}
	return hex.EncodeToString(sum[:])
}

// truncatedUpload declares 100 KB, sends 10 KB and closes the connection.
func truncatedUpload(t *testing.T, rawURL, token string) {
	t.Helper()
	u, _ := url.Parse(rawURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n", u.Path, u.Host, token)
	_, _ = conn.Write(jpeg(10_000))
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.ReadAll(conn)
	_ = conn.Close()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// i18nPublicURL is the public URL the appeal notices link to: 22
// characters, as long as a production one such as https://mfa.example.cn.
// The test follows the links' paths on its own server.
const i18nPublicURL = "https://mfa.example.cn"

func hasHan(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0
}

// TestMessagesInTheAccountsLanguage files an appeal for a zh-CN account
// (the default) and for an en one on real Temporal, PostgreSQL and MinIO.
// The zh-CN owner's filed SMS is Chinese, one segment (at most 70
// characters), starts with 【mfaflow】 and carries the short link, which
// leads to the owner's cancel page with a token that cancels the appeal;
// the e-mail carries the full link. The en owner gets English: an SMS in
// the GSM alphabet within 160 characters, an English e-mail with the time
// in the account's zone once the appeal is approved. API errors answer
// Chinese for Accept-Language zh-CN (and without the header) and English
// for en.
func TestMessagesInTheAccountsLanguage(t *testing.T) {
	st := storetest.Postgres(t)
	s := newStackWith(t, st, 1, api.AppealConfig{PublicURL: i18nPublicURL, Cooldown: time.Hour})
	noFollow := *s.client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	putAccount := func(id, phone, locale, zone string) {
		body := map[string]any{
			"type": "personal", "bound_phone": phone, "email": id + "@example.com",
			"logins":       []map[string]string{{"kind": "qq", "id": "10" + phone[len(phone)-6:]}},
			"real_name":    map[string]any{"verified": true, "name": "张三", "id_number": "11010519491231002X"},
			"login_method": "mfa",
		}
		if locale != "" {
			body["locale"], body["time_zone"] = locale, zone
		}
		if code, out, _ := s.call(0, http.MethodPut, "/v1/admin/accounts/"+id, s.admin, body); code != http.StatusCreated {
			t.Fatalf("put account %s = %d %v", id, code, out)
		}
		s.bindDirect(id)
	}
	// file files and submits an appeal and returns its id, its access
	// token and the filed notices to the phone and the e-mail.
	file := func(acct, phone string) (id, token string, sms, email store.OutboxMessage) {
		t.Helper()
		code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, "11010519491231002X"))
		if code != http.StatusCreated {
			t.Fatalf("file for %s = %d %v", acct, code, out)
		}
		id, token = out["appeal_id"].(string), out["access_token"].(string)
		uploadOK(t, s, "/v1/appeals/"+id+"/documents/id_holding_photo", token, jpeg(20_000))
		if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", code, out)
		}
		sms = s.waitNotice(phone, id, workflows.AppealEventFiled)
		email = s.waitNotice(acct+"@example.com", id, workflows.AppealEventFiled)
		return id, token, sms, email
	}

	// zh-CN, the directory's default.
	const zhAcct, zhPhone = "e2e-i18n-zh", "13800000061"
	putAccount(zhAcct, zhPhone, "", "")
	id, token, sms, email := file(zhAcct, zhPhone)
	n, segment := notify.SMSLength(sms.Body)
	t.Logf("zh-CN SMS, %d of %d: %s", n, segment, sms.Body)
	if !hasHan(sms.Body) || segment != notify.SMSSegmentUCS2 || n > 70 {
		t.Fatalf("zh-CN filed SMS is not Chinese in one segment (%d of %d): %q", n, segment, sms.Body)
	}
	if !strings.HasPrefix(sms.Body, "【mfaflow】") && !strings.HasSuffix(sms.Body, "】") {
		t.Fatalf("zh-CN SMS without 【mfaflow】 at either end: %q", sms.Body)
	}
	if !hasHan(email.Body) || !strings.Contains(email.Body, i18nPublicURL+"/appeals/"+id+"/owner-cancel?token=") {
		t.Fatalf("zh-CN filed e-mail without Chinese or the full link: %q", email.Body)
	}
	i := strings.Index(sms.Body, i18nPublicURL+"/c/")
	if i < 0 {
		t.Fatalf("zh-CN SMS without a short link under %s: %q", i18nPublicURL, sms.Body)
	}
	short := strings.TrimPrefix(strings.Fields(sms.Body[i:])[0], i18nPublicURL)
	resp, err := noFollow.Get(s.apis[0].URL + short)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	prefix := "/appeals/" + id + "/owner-cancel?token="
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("GET %s = %d to %q, want 303 to %s…", short, resp.StatusCode, loc, prefix)
	}
	code, out, _ := s.call(0, http.MethodPost, "/v1/appeals/"+id+"/cancel", "", map[string]string{"token": strings.TrimPrefix(loc, prefix)})
	if code != http.StatusOK || out["cancelled_by"] != "owner" {
		t.Fatalf("cancel with the short link's token = %d %v", code, out)
	}
	s.waitStatus(id, token, workflows.AppealCancelled)

	// en, with its own zone.
	const enAcct, enPhone = "e2e-i18n-en", "13800000062"
	putAccount(enAcct, enPhone, "en", "Europe/London")
	id, token, sms, email = file(enAcct, enPhone)
	n, segment = notify.SMSLength(sms.Body)
	t.Logf("en SMS, %d of %d: %s", n, segment, sms.Body)
	if hasHan(sms.Body) || segment != notify.SMSSegmentGSM || n > 160 || !strings.HasPrefix(sms.Body, "[mfaflow] ") ||
		!strings.Contains(sms.Body, i18nPublicURL+"/c/") || !strings.Contains(sms.Body, "unbind") {
		t.Fatalf("en filed SMS is not English GSM text in one segment with the short link (%d of %d): %q", n, segment, sms.Body)
	}
	if hasHan(email.Body) || !strings.Contains(email.Body, "unbind") {
		t.Fatalf("en filed e-mail is not English: %q", email.Body)
	}
	rev1, rev2 := staff(t, "rev-i18n-1", "", "reviewer"), staff(t, "rev-i18n-2", "", "reviewer")
	for _, rev := range []string{rev1, rev2} {
		if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil); code != http.StatusOK {
			t.Fatalf("claim = %d %v", code, out)
		}
		code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]string{"decision": "approve"})
		if code != http.StatusOK {
			t.Fatalf("approve = %d %v", code, out)
		}
		if out["status"] == workflows.AppealCoolingDown {
			break
		}
	}
	approved := s.waitNotice(enAcct+"@example.com", id, workflows.AppealEventApproved)
	if hasHan(approved.Body) || !strings.Contains(approved.Body, "(UTC+0)") {
		t.Fatalf("en approved e-mail not in English with the London time: %q", approved.Body)
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/appeals/"+id+"/cancel", token, nil); code != http.StatusOK {
		t.Fatalf("applicant cancel = %d %v", code, out)
	}

	// API errors in the request's language; the code stays English.
	for _, c := range []struct {
		accept string
		zh     bool
	}{{"", true}, {"zh-CN,zh;q=0.9", true}, {"en-US,en;q=0.9", false}, {"en", false}} {
		req, _ := http.NewRequest(http.MethodGet, s.apis[0].URL+"/v1/appeals/"+id, nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		if c.accept != "" {
			req.Header.Set("Accept-Language", c.accept)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(raw, &e); err != nil || resp.StatusCode != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
			t.Fatalf("Accept-Language %q: %d %s, want 401 unauthorized", c.accept, resp.StatusCode, raw)
		}
		if hasHan(e.Error.Message) != c.zh {
			t.Errorf("Accept-Language %q answered %q", c.accept, e.Error.Message)
		}
	}
}

// waitNotice waits for the appeal notice of event (workflows.AppealEvent…)
// to to about appeal id.
func (s *stack) waitNotice(to, id, event string) store.OutboxMessage {
	s.t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		msgs, err := s.st.ListOutbox(context.Background(), to, 50)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Kind == activities.KindAppealNotice && m.Data["appeal_id"] == id && m.Data["event"] == event {
				return m
			}
		}
	}
	s.t.Fatalf("no %s notice of %s to %s", event, id, to)
	return store.OutboxMessage{}
}

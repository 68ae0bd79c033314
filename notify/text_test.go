package notify

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/store"
)

// sampleLink is the longest short cancel link expected in production: a
// public URL of 22 characters, /c/ and a 16-character token.
const sampleLink = "https://mfa.example.cn/c/Xk3b9QmZ0aLpQ1w2"

// sampleData fills every message of the catalog with the longest values it
// gets in production: a hardware token's serial, a short link, a time with
// a two-digit day in the reader's zone, ten recovery codes left.
func sampleData(tx Text) map[string]any {
	at := time.Date(2026, 12, 19, 15, 27, 0, 0, time.UTC)
	return map[string]any{
		"Code": "123456", "Minutes": 5, "Until": tx.Time(at), "Time": tx.Time(at),
		"Device": tx.Device(store.Hardware, "TKN0001234567", ""), "Kind": tx.Kind(store.SecurityCenter),
		"Scopes": tx.Scopes(true, true), "Login": tx.OnOff(true), "Operation": tx.OnOff(false), "Left": 10, "Count": 3,
		"Link":      "https://mfa.example.cn/appeals/apl_Xk3b9QmZ0aLpQ1w2/owner-cancel?token=k1" + strings.Repeat("A", 43),
		"ShortLink": sampleLink,
		"AppealID":  "apl_Xk3b9QmZ0aLpQ1w2", "Type": tx.ApplicantType("enterprise"), "Status": tx.Status("pending_review"),
		"SLA": tx.Hours(48 * time.Hour),
	}
}

var msgID = regexp.MustCompile(`(?m)^"msg\.([a-z_]+)\.(sms|email)"`)

// TestMessagesRender renders every SMS and e-mail of the catalog in both
// languages, in the default zone and in zones with longer offsets: no raw
// key, no missing value, the product first (in 【】 in Chinese, in [] in
// English), and each SMS in one segment: a Chinese one at most 70 UCS-2
// units, an English one in the GSM 7-bit alphabet and at most 160 septets.
// It logs the lengths.
func TestMessagesRender(t *testing.T) {
	buf, err := os.ReadFile("../i18n/locales/messages.en.toml")
	if err != nil {
		t.Fatal(err)
	}
	ids := msgID.FindAllStringSubmatch(string(buf), -1)
	if len(ids) < 30 {
		t.Fatalf("%d messages in the catalog, want every kind", len(ids))
	}
	longest := map[i18n.Lang]int{}
	for _, l := range i18n.Langs {
		prefix := map[i18n.Lang]string{i18n.ZH: "【mfaflow】", i18n.EN: "[mfaflow] "}[l]
		for _, zone := range []string{"", "Asia/Kolkata", "America/St_Johns"} {
			tx := Text{Lang: l, Zone: zone}
			for _, m := range ids {
				kind, channel := m[1], m[2]
				body := tx.Body(map[string]string{"sms": SMS, "email": Email}[channel], kind, sampleData(tx))
				switch {
				case strings.Contains(body, "msg.") || strings.Contains(body, "<no value>") || strings.Contains(body, "{{"):
					t.Errorf("%s %s.%s: raw key or missing value: %q", l, kind, channel, body)
				case kind != "appeal_sla" && !strings.HasPrefix(body, prefix):
					t.Errorf("%s %s.%s does not start with %s: %q", l, kind, channel, prefix, body)
				}
				if zone == "" && l == i18n.ZH && !strings.Contains(body, "（UTC+8）") && strings.Contains(body, "2026") {
					t.Errorf("%s %s.%s: time not in UTC+8: %q", l, kind, channel, body)
				}
				if channel != "sms" {
					continue
				}
				n, segment := SMSLength(body)
				if zone == "" {
					t.Logf("%-5s %-20s %3d of %d", l, kind, n, segment)
				}
				longest[l] = max(longest[l], n)
				switch want := map[i18n.Lang]int{i18n.ZH: SMSSegmentUCS2, i18n.EN: SMSSegmentGSM}[l]; {
				case segment != want:
					t.Errorf("%s %s SMS is not in the GSM 7-bit alphabet: %q", l, kind, body)
				case n > segment:
					t.Errorf("%s %s SMS (zone %q) is %d, over one segment of %d: %q", l, kind, zone, n, segment, body)
				}
			}
		}
	}
	t.Logf("longest SMS: zh-CN %d of %d UCS-2 units, en %d of %d septets", longest[i18n.ZH], SMSSegmentUCS2, longest[i18n.EN], SMSSegmentGSM)
}

func TestSMSLength(t *testing.T) {
	for _, c := range []struct {
		s          string
		n, segment int
	}{
		{"[mfaflow] code 123456", 23, SMSSegmentGSM},
		{"Üñìcode ok: é, ñ, ß", 19, SMSSegmentGSM},
		{"a{b}€", 8, SMSSegmentGSM},
		{"【mfaflow】验证码123456", 18, SMSSegmentUCS2},
		{"curly ’quote’", 13, SMSSegmentUCS2},
		{"emoji 😀", 8, SMSSegmentUCS2},
	} {
		if n, seg := SMSLength(c.s); n != c.n || seg != c.segment {
			t.Errorf("SMSLength(%q) = %d, %d; want %d, %d", c.s, n, seg, c.n, c.segment)
		}
	}
}

func TestTextWords(t *testing.T) {
	zh, en := Text{Lang: i18n.ZH}, Text{Lang: i18n.EN, Zone: "UTC"}
	for _, c := range []struct{ got, want string }{
		{zh.Scopes(true, true), "登录保护、操作保护"},
		{en.Scopes(true, false), "login protection"},
		{en.Scopes(false, false), "no protection"},
		{zh.Device(store.WebAuthn, "", "YubiKey"), "安全密钥（YubiKey）"},
		{en.Device(store.Virtual, "", ""), "An authenticator app"},
		{zh.Status("in_review"), "审核中"},
		{en.Status("unknown_status"), "unknown_status"},
		{zh.Time(time.Date(2026, 12, 9, 15, 27, 0, 0, time.UTC)), "2026年12月9日 23:27（UTC+8）"},
		{en.Time(time.Date(2026, 12, 9, 15, 27, 0, 0, time.UTC)), "9 Dec 2026, 15:27 (UTC+0)"},
		{TextFor(store.Account{Locale: "en", TimeZone: "Europe/Berlin"}, "").Time(time.Date(2026, 12, 9, 15, 27, 0, 0, time.UTC)), "9 Dec 2026, 16:27 (UTC+1)"},
		{TextFor(store.Account{}, "x").SMS("appeal_rejected", nil)[:len("【x】")], "【x】"},
		{TextFor(store.Account{Locale: "en"}, "x").SMS("appeal_rejected", nil)[:len("[x]")], "[x]"},
		{zh.Kind(store.Hardware), "硬件令牌"},
		{en.Kind(store.DeviceType("other")), "An MFA device"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

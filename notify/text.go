package notify

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/store"
)

// DefaultProduct is the product name an SMS and an e-mail start with (in
// 【】 in Chinese, in [] in English) when Text.Product is empty.
const DefaultProduct = "mfaflow"

// SMS segment sizes. A text in the GSM 7-bit alphabet fits 160 septets in
// one segment (a character of the extension table, such as [ or ], takes
// two); any other character (Chinese, 【】) makes the whole text UCS-2, 70
// UTF-16 code units in one segment. Every SMS of the catalog fits one.
const (
	SMSSegmentUCS2 = 70
	SMSSegmentGSM  = 160
)

// SMSUnits returns the length of s in UTF-16 code units, what a UCS-2 SMS
// segment counts.
func SMSUnits(s string) int { return len(utf16.Encode([]rune(s))) }

const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡" +
		"ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "^{}\\[~]|€\f"
)

// GSMSeptets returns the length of s in septets of the GSM 7-bit default
// alphabet (3GPP TS 23.038), and false when s has a character outside it.
func GSMSeptets(s string) (int, bool) {
	n := 0
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			n++
		case strings.ContainsRune(gsmExtension, r):
			n += 2
		default:
			return 0, false
		}
	}
	return n, true
}

// SMSLength returns the length of s as an SMS counts it and the size of one
// segment of its encoding: septets of 160 for a GSM 7-bit text, else UTF-16
// units of 70.
func SMSLength(s string) (n, segment int) {
	if n, ok := GSMSeptets(s); ok {
		return n, SMSSegmentGSM
	}
	return SMSUnits(s), SMSSegmentUCS2
}

// Text renders the messages one reader gets (catalog ids "msg.<kind>.sms"
// and "msg.<kind>.email" of package i18n): in its language, times in its
// zone, scopes, statuses and devices in words. Rendering happens in
// activities and services, never in workflow code, so a catalog change
// cannot change a workflow's history.
type Text struct {
	Lang    i18n.Lang
	Zone    string // an IANA zone; empty means Asia/Shanghai
	Product string // empty means DefaultProduct
}

// TextFor returns the Text of an account's owner: the directory entry's
// locale (zh-CN when empty or unknown) and time zone.
func TextFor(a store.Account, product string) Text {
	return Text{Lang: i18n.Or(a.Locale, i18n.ZH), Zone: a.TimeZone, Product: product}
}

// Body returns the text of kind for channel (SMS, or e-mail for any other
// channel), with data filling its template and .Product set.
func (t Text) Body(channel, kind string, data map[string]any) string {
	if channel == SMS {
		return t.SMS(kind, data)
	}
	return t.Email(kind, data)
}

// SMS returns the SMS text of kind.
func (t Text) SMS(kind string, data map[string]any) string { return t.render("msg."+kind+".sms", data) }

// Email returns the e-mail text of kind.
func (t Text) Email(kind string, data map[string]any) string {
	return t.render("msg."+kind+".email", data)
}

func (t Text) render(id string, data map[string]any) string {
	d := map[string]any{"Product": t.Product}
	if t.Product == "" {
		d["Product"] = DefaultProduct
	}
	for k, v := range data {
		d[k] = v
	}
	return i18n.T(t.Lang, id, d)
}

// Time formats at in the reader's language and zone (i18n.Time).
func (t Text) Time(at time.Time) string { return i18n.Time(t.Lang, at, t.Zone) }

// Scopes names the protections that are on, or says none is.
func (t Text) Scopes(login, operation bool) string {
	var out string
	add := func(id string) {
		if out != "" {
			out += i18n.T(t.Lang, "msg.word.scope.sep", nil)
		}
		out += i18n.T(t.Lang, id, nil)
	}
	if login {
		add("msg.word.scope.login")
	}
	if operation {
		add("msg.word.scope.operation")
	}
	if out == "" {
		return i18n.T(t.Lang, "msg.word.scope.none", nil)
	}
	return out
}

// OnOff says whether a protection is on.
func (t Text) OnOff(on bool) string {
	if on {
		return i18n.T(t.Lang, "msg.word.on", nil)
	}
	return i18n.T(t.Lang, "msg.word.off", nil)
}

// Device names a device of type typ (a store.DeviceType) without any secret.
func (t Text) Device(typ store.DeviceType, serial, name string) string {
	switch typ {
	case store.Virtual, store.Hardware, store.WebAuthn, store.SecurityCenter:
		return i18n.T(t.Lang, "msg.word.device."+string(typ), map[string]any{"Serial": serial, "Name": name})
	}
	return i18n.T(t.Lang, "msg.word.device.other", nil)
}

// Kind names a device's kind only, as an SMS does: "硬件令牌", "A hardware token".
func (t Text) Kind(typ store.DeviceType) string {
	switch typ {
	case store.Virtual, store.Hardware, store.WebAuthn, store.SecurityCenter:
		return i18n.T(t.Lang, "msg.word.kind."+string(typ), nil)
	}
	return i18n.T(t.Lang, "msg.word.kind.other", nil)
}

// Status names an appeal status; an unknown one stays as it is.
func (t Text) Status(status string) string { return t.word("msg.word.status."+status, status) }

// ApplicantType names an appeal's applicant type; an unknown one stays as it is.
func (t Text) ApplicantType(typ string) string { return t.word("msg.word.applicant."+typ, typ) }

// Hours says d in hours (rounded up).
func (t Text) Hours(d time.Duration) string {
	h := int((d + time.Hour - 1) / time.Hour)
	return i18n.T(t.Lang, "msg.word.hours", map[string]any{"Hours": strconv.Itoa(h)})
}

func (t Text) word(id, fallback string) string {
	if !i18n.Has(t.Lang, id) {
		return fallback
	}
	return i18n.T(t.Lang, id, nil)
}

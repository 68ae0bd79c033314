package activities_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// The applicant's records in the directory. The ID number and the unified
// social credit code pass their checksums (GB 11643, GB 32100).
const (
	apPhone   = "+8613800138000"
	apEmail   = "owner@example.com"
	apName    = "Zhang San"
	apID      = "11010519491231002X"
	apCompany = "Example Trading Co., Ltd."
	apReg     = "91350100M000100Y43"
)

// realNameAccount puts a verified account of type typ into the directory.
func (f *fixture) realNameAccount(t *testing.T, id string, typ store.AccountType, verified bool) {
	t.Helper()
	a := store.Account{ID: id, Type: typ, BoundPhone: apPhone, Email: apEmail,
		Logins:      []store.Login{{Kind: store.LoginQQ, ID: "q" + id}, {Kind: store.LoginEmail, ID: "Login." + id + "@example.com"}},
		RealName:    store.RealName{Verified: verified, Name: apName, IDNumber: apID},
		LoginMethod: store.LoginMFA}
	if typ == store.Enterprise {
		a.Company = store.Company{Name: apCompany, RegNumber: apReg}
	}
	_, err := f.st.PutAccount(ctx(t), a)
	must(t, err)
}

// device creates a device of the account in status st.
func (f *fixture) device(t *testing.T, account, id string, typ store.DeviceType, st store.DeviceStatus, serial string) {
	t.Helper()
	secret, err := mfa.NewSecret(nil)
	must(t, err)
	sealed, err := f.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), id))
	must(t, err)
	status := st
	if st == store.DeviceRevoked {
		status = store.DeviceActive
	}
	_, err = f.st.CreateDevice(ctx(t), store.Device{ID: id, AccountID: account, Type: typ, Serial: serial, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: status})
	must(t, err)
	if st == store.DeviceRevoked {
		_, err = f.st.RevokeDevice(ctx(t), id, f.clock.Now())
		must(t, err)
	}
}

func personalApplicant(account string) workflows.Applicant {
	return workflows.Applicant{LoginKind: "qq", LoginID: "q" + account, BoundPhone: apPhone, Name: apName, IDNumber: apID, ContactPhone: "+8613900139000"}
}

func TestCheckEligibility(t *testing.T) {
	type tc struct {
		name    string
		typ     string
		mut     func(*workflows.Applicant)
		account string // the account the appeal names
		want    string // error type, "" for eligible
	}
	tests := []tc{
		{name: "personal", typ: workflows.ApplicantPersonal, account: "p-ok"},
		{name: "personal formatted differently", typ: workflows.ApplicantPersonal, account: "p-ok", mut: func(a *workflows.Applicant) {
			a.BoundPhone, a.IDNumber, a.Name = "138 0013-8000", strings.ToLower(apID), " Zhang  San "
		}},
		{name: "login by e-mail, any case", typ: workflows.ApplicantPersonal, account: "p-ok", mut: func(a *workflows.Applicant) {
			a.LoginKind, a.LoginID = "email", "login.P-OK@EXAMPLE.com"
		}},
		{name: "unknown account", typ: workflows.ApplicantPersonal, account: "nobody", want: workflows.ErrTypeRealNameNotVerified},
		{name: "not real-name verified", typ: workflows.ApplicantPersonal, account: "p-unverified", want: workflows.ErrTypeRealNameNotVerified},
		{name: "not verified, wrong details too", typ: workflows.ApplicantPersonal, account: "p-unverified", want: workflows.ErrTypeRealNameNotVerified,
			mut: func(a *workflows.Applicant) { a.Name = "Li Si" }},
		{name: "wrong phone", typ: workflows.ApplicantPersonal, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.BoundPhone = "+8613800138001" }},
		{name: "wrong name", typ: workflows.ApplicantPersonal, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.Name = "Zhang Si" }},
		{name: "wrong ID number", typ: workflows.ApplicantPersonal, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.IDNumber = "110105194912310021" }},
		{name: "login of another kind", typ: workflows.ApplicantPersonal, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.LoginKind = "wechat" }},
		{name: "login of another account", typ: workflows.ApplicantPersonal, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.LoginID = "qe-ok" }},
		{name: "no login", typ: workflows.ApplicantPersonal, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.LoginKind, a.LoginID = "", "" }},
		{name: "enterprise", typ: workflows.ApplicantEnterprise, account: "e-ok", mut: func(a *workflows.Applicant) {
			a.CompanyName, a.CompanyRegNumber = apCompany, strings.ToLower(apReg)
		}},
		{name: "enterprise wrong reg number", typ: workflows.ApplicantEnterprise, account: "e-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.CompanyName, a.CompanyRegNumber = apCompany, "91350100M000100Y44" }},
		{name: "enterprise wrong company", typ: workflows.ApplicantEnterprise, account: "e-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.CompanyName, a.CompanyRegNumber = "Other Co.", apReg }},
		{name: "enterprise appeal on a personal account", typ: workflows.ApplicantEnterprise, account: "p-ok", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.CompanyName, a.CompanyRegNumber = apCompany, apReg }},
		{name: "unknown applicant type", typ: "robot", account: "p-ok", want: workflows.ErrTypeIdentityMismatch},
		{name: "no device", typ: workflows.ApplicantPersonal, account: "p-none", want: workflows.ErrTypeNoMFABound},
		{name: "only pending, revoked and security-center devices", typ: workflows.ApplicantPersonal, account: "p-other", want: workflows.ErrTypeNoMFABound},
		{name: "no device, wrong details", typ: workflows.ApplicantPersonal, account: "p-none", want: workflows.ErrTypeIdentityMismatch,
			mut: func(a *workflows.Applicant) { a.IDNumber = "110105194912310021" }},
		{name: "hardware only", typ: workflows.ApplicantPersonal, account: "p-hw"},
	}
	eachStore(t, func(t *testing.T, f *fixture) {
		f.realNameAccount(t, "p-ok", store.Personal, true)
		f.device(t, "p-ok", "dev-p-ok", store.Virtual, store.DeviceActive, "")
		f.realNameAccount(t, "e-ok", store.Enterprise, true)
		f.device(t, "e-ok", "dev-e-ok", store.Virtual, store.DeviceActive, "")
		f.realNameAccount(t, "p-unverified", store.Personal, false)
		f.device(t, "p-unverified", "dev-p-unverified", store.Virtual, store.DeviceActive, "")
		f.realNameAccount(t, "p-none", store.Personal, true)
		f.realNameAccount(t, "p-other", store.Personal, true)
		f.device(t, "p-other", "dev-p-other-1", store.Virtual, store.DevicePending, "")
		f.device(t, "p-other", "dev-p-other-2", store.Virtual, store.DeviceRevoked, "")
		f.device(t, "p-other", "dev-p-other-3", store.SecurityCenter, store.DeviceActive, "")
		f.realNameAccount(t, "p-hw", store.Personal, true)
		f.importCard(t, "SN-HW-1", mfa.Params{})
		f.device(t, "p-hw", "dev-p-hw", store.Hardware, store.DeviceActive, "SN-HW-1")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ap := personalApplicant(tt.account)
				if tt.account == "p-ok" || tt.account == "nobody" {
					ap = personalApplicant("p-ok")
				}
				if tt.typ == workflows.ApplicantEnterprise {
					ap.LoginID = "q" + tt.account
				}
				if tt.mut != nil {
					tt.mut(&ap)
				}
				err := f.a.CheckEligibility(ctx(t), workflows.CheckEligibilityInput{AccountID: tt.account, ApplicantType: tt.typ, Applicant: ap})
				if tt.want == "" {
					must(t, err)
					return
				}
				wantType(t, err, tt.want)
				for _, leak := range []string{apName, apID, apPhone, "phone", "ID number", "login"} {
					if strings.Contains(err.Error(), leak) {
						t.Fatalf("refusal %q says %q", err, leak)
					}
				}
			})
		}
	})
}

func TestOwnerCancelToken(t *testing.T) {
	k1, err := mfa.GenerateKeyring()
	must(t, err)
	k2, err := mfa.GenerateKeyring()
	must(t, err)
	tok := activities.OwnerCancelToken(k1, "apl_1")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{44,75}$`).MatchString(tok) || mfa.LinkTokenKeyID(tok) != k1.CurrentID() {
		t.Fatalf("token %q is not a key id and 32 bytes of base64url", tok)
	}
	if activities.OwnerCancelToken(k1, "apl_1") != tok {
		t.Fatal("token not deterministic")
	}
	if activities.OwnerCancelToken(k1, "apl_2") == tok || activities.OwnerCancelToken(k2, "apl_1") == tok {
		t.Fatal("token does not depend on the appeal and the key")
	}
	if !activities.CheckOwnerCancelToken(k1, "apl_1", tok) || activities.CheckOwnerCancelToken(k1, "apl_2", tok) ||
		activities.CheckOwnerCancelToken(k2, "apl_1", tok) || activities.CheckOwnerCancelToken(k1, "apl_1", "") {
		t.Fatal("CheckOwnerCancelToken")
	}
	if activities.CheckOwnerCancelToken(nil, "apl_1", activities.OwnerCancelToken(nil, "apl_1")) {
		t.Fatal("an empty key ring checks a token")
	}
	// After a rotation (new key first, old key second) the link sent
	// before it still checks; once the old key leaves the ring it does not.
	rotated, err := mfa.ParseKeyring(k2.Encode() + "," + k1.Encode())
	must(t, err)
	if !activities.CheckOwnerCancelToken(rotated, "apl_1", tok) {
		t.Fatal("a link sent before the rotation does not check")
	}
	if activities.OwnerCancelToken(rotated, "apl_1") != activities.OwnerCancelToken(k2, "apl_1") {
		t.Fatal("new links are not made with the new current key")
	}
	if activities.CheckOwnerCancelToken(k2, "apl_1", tok) {
		t.Fatal("a link whose key left the ring checks")
	}
}

func TestNotifyAppealOwner(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.realNameAccount(t, "acct-n", store.Personal, true)
		const appealID = "apl_Xk3b9QmZ0aLpQ1w2" // as the API makes them: 12 random bytes
		in := workflows.AppealNoticeInput{AppealID: appealID, AccountID: "acct-n", Event: workflows.AppealEventFiled, PublicURL: "https://mfaflow.example/"}
		must(t, f.a.NotifyAppealOwner(c, in))
		msgs := f.outbox(t, activities.KindAppealNotice)
		if len(msgs) != 2 {
			t.Fatalf("outbox %+v", msgs)
		}
		link := "https://mfaflow.example/appeals/" + appealID + "/owner-cancel?token=" + activities.OwnerCancelToken(f.keys, appealID)
		token, ok := activities.OwnerCancelShortToken(f.keys, appealID)
		short := "https://mfaflow.example/c/" + token
		if got := activities.OwnerCancelShortURL(f.keys, in.PublicURL, appealID); !ok || got != short || len(token) != 16 {
			t.Fatalf("short link %q, want %q", got, short)
		}
		for _, m := range msgs {
			want := link // the e-mail has the whole link, the SMS the short one
			if m.Channel == notify.SMS {
				want = short
				if n, seg := notify.SMSLength(m.Body); n > seg || seg != notify.SMSSegmentUCS2 {
					t.Errorf("filed SMS is %d of a segment of %d: %q", n, seg, m.Body)
				}
			}
			if !strings.Contains(m.Body, want) || !strings.HasPrefix(m.Body, "【mfaflow】") {
				t.Fatalf("%s notice without the cancel link %s: %q", m.Channel, want, m.Body)
			}
			if m.Data["message_id"] != "appeal-"+appealID+"-filed-"+m.Channel {
				t.Fatalf("message id %q", m.Data["message_id"])
			}
			if (m.Channel == notify.SMS) != (m.To == apPhone) || (m.Channel == notify.Email) != (m.To == apEmail) {
				t.Fatalf("notice to %s by %s", m.To, m.Channel)
			}
			for _, pii := range []string{apName, apID} {
				if strings.Contains(m.Body, pii) {
					t.Fatal("notice holds PII")
				}
			}
		}
		u, err := url.Parse(link)
		must(t, err)
		if !activities.CheckOwnerCancelToken(f.keys, appealID, u.Query().Get("token")) {
			t.Fatal("the link's token does not verify")
		}
		in.Event, in.UnbindAt = workflows.AppealEventApproved, time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
		must(t, f.a.NotifyAppealOwner(c, in))
		msgs = f.outbox(t, activities.KindAppealNotice)
		// zh-CN, the account's default, with the time in Asia/Shanghai.
		if len(msgs) != 4 {
			t.Fatalf("outbox %+v", msgs)
		}
		for _, m := range msgs[:2] { // newest first; the SMS leaves the time to the e-mail
			want := map[string]string{notify.SMS: short, notify.Email: link}[m.Channel]
			if (m.Channel == notify.Email && !strings.Contains(m.Body, "2030年1月2日 11:04（UTC+8）")) || !strings.Contains(m.Body, want) {
				t.Fatalf("approved notice %+v", m)
			}
		}
		// An account that reads English in London gets English, its time in its zone.
		acct, err := f.st.GetAccount(c, "acct-n")
		must(t, err)
		acct.Locale, acct.TimeZone = "en", "Europe/London"
		_, err = f.st.PutAccount(c, acct)
		must(t, err)
		must(t, f.a.NotifyAppealOwner(c, in))
		msgs = f.outbox(t, activities.KindAppealNotice)
		for _, m := range msgs[:2] {
			if strings.ContainsFunc(m.Body, func(r rune) bool { return r >= 0x3000 }) || !strings.HasPrefix(m.Body, "[mfaflow] ") {
				t.Fatalf("English notice with Chinese or without [mfaflow]: %q", m.Body)
			}
			if m.Channel == notify.Email && !strings.Contains(m.Body, "2 Jan 2030, 03:04 (UTC+0)") {
				t.Fatalf("English approved e-mail without the London time: %q", m.Body)
			}
			if n, seg := notify.SMSLength(m.Body); m.Channel == notify.SMS && (seg != notify.SMSSegmentGSM || n > seg) {
				t.Fatalf("English SMS is %d of %d: %q", n, seg, m.Body)
			}
		}
		acct.Locale = ""
		_, err = f.st.PutAccount(c, acct)
		must(t, err)
		for _, ev := range []string{workflows.AppealEventRejected, workflows.AppealEventCancelled, workflows.AppealEventDeviceUsed} {
			in.Event = ev
			must(t, f.a.NotifyAppealOwner(c, in))
		}
		if got := len(f.outbox(t, activities.KindAppealNotice)); got != 12 {
			t.Fatalf("%d notices", got)
		}
		in.Event = "party"
		wantType(t, f.a.NotifyAppealOwner(c, in), workflows.ErrTypeInvalidInput)
		// An account gone from the directory: nothing to tell, no retry.
		must(t, f.a.NotifyAppealOwner(c, workflows.AppealNoticeInput{AppealID: "apl_n2", AccountID: "gone", Event: workflows.AppealEventCancelled}))

		must(t, f.a.NotifyLead(c, workflows.NotifyLeadInput{AppealID: appealID, ApplicantType: "personal", Status: workflows.AppealPending,
			SubmittedAt: in.UnbindAt, ReviewSLA: 24 * time.Hour}))
		leads := f.outbox(t, activities.KindAppealSLA)
		if len(leads) != 1 || leads[0].To != activities.DefaultLeadEmail || leads[0].Channel != notify.Email || !strings.Contains(leads[0].Body, appealID) {
			t.Fatalf("lead notice %+v", leads)
		}
	})
}

func TestAuditAppealOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		in := workflows.AppealAuditInput{AppealID: "apl_a", AccountID: "acct-a", Key: "appeal.claim#3", Actor: "reviewer:rev-1",
			Action: workflows.AuditAppealClaim, Outcome: "ok", Details: map[string]string{"reviewer": "rev-1"}}
		must(t, f.a.AuditAppeal(c, in))
		must(t, f.a.AuditAppeal(c, in)) // a retry
		in.Key = "appeal.claim#5"
		must(t, f.a.AuditAppeal(c, in))
		got := f.audit(t, "acct-a", workflows.AuditAppealClaim, "ok")
		if len(got) != 2 || got[0].Subject != "apl_a" || got[0].Actor != "reviewer:rev-1" || got[0].Details["reviewer"] != "rev-1" {
			t.Fatalf("audit %+v", got)
		}
	})
}

func TestSetAppealStatus(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		_, err := f.st.CreateAppeal(c, store.Appeal{ID: "apl_s", AccountID: "acct-s", ApplicantType: "personal",
			TokenHash: store.TokenHash("apt_s"), Status: "filing"})
		must(t, err)
		at := f.clock.Now()
		must(t, f.a.SetAppealStatus(c, workflows.SetAppealStatusInput{AppealID: "apl_s", Status: workflows.AppealCoolingDown, At: at}))
		got, err := f.st.GetAppeal(c, "apl_s")
		must(t, err)
		if got.Status != workflows.AppealCoolingDown || !got.ClosedAt.IsZero() {
			t.Fatalf("appeal %+v", got)
		}
		must(t, f.a.SetAppealStatus(c, workflows.SetAppealStatusInput{AppealID: "apl_s", Status: workflows.AppealUnbound, Closed: true, At: at.Add(time.Hour)}))
		must(t, f.a.SetAppealStatus(c, workflows.SetAppealStatusInput{AppealID: "apl_s", Status: workflows.AppealUnbound, Closed: true, At: at.Add(2 * time.Hour)}))
		got, err = f.st.GetAppeal(c, "apl_s")
		must(t, err)
		if got.Status != workflows.AppealUnbound || !got.ClosedAt.Equal(at.Add(time.Hour)) {
			t.Fatalf("appeal %+v", got)
		}
		// Unknown to the store: nothing to mirror, and no retry.
		must(t, f.a.SetAppealStatus(c, workflows.SetAppealStatusInput{AppealID: "apl_none", Status: workflows.AppealIneligible, Closed: true, At: at}))
	})
}

// TestUnbindAll: twice (a retry) revokes the devices once, writes one
// audit entry and one revoke_sessions message; the security-center token
// and devices revoked before the approval are left alone.
func TestUnbindAll(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		const acct = "acct-u"
		f.realNameAccount(t, acct, store.Personal, true)
		f.device(t, acct, "dev-old", store.Virtual, store.DeviceRevoked, "")
		f.clock.Add(time.Hour)
		approvedAt := f.clock.Now()
		f.device(t, acct, "dev-app", store.Virtual, store.DeviceActive, "")
		f.device(t, acct, "dev-pending", store.Virtual, store.DevicePending, "")
		f.device(t, acct, "dev-sc", store.SecurityCenter, store.DeviceActive, "")
		f.importCard(t, "SN-U-1", mfa.Params{})
		f.device(t, acct, "dev-card", store.Hardware, store.DeviceActive, "SN-U-1")
		must(t, f.st.AssignToken(c, "SN-U-1", acct, "dev-card", f.clock.Now()))
		_, err := f.st.SetProtection(c, acct, store.Protection{Login: true, Operation: true})
		must(t, err)
		for range 3 {
			_, _, err := f.st.SpendAttempt(c, acct, f.clock.Now(), mfa.LockPolicy{}.LockFor)
			must(t, err)
		}
		f.clock.Add(time.Minute)
		in := workflows.UnbindAllInput{AppealID: "apl_u", AccountID: acct, ApprovedAt: approvedAt}
		first, err := f.a.UnbindAll(c, in)
		must(t, err)
		revokedAt := f.clock.Now()
		f.clock.Add(time.Minute)
		second, err := f.a.UnbindAll(c, in)
		must(t, err)
		want := []string{"dev-app", "dev-card", "dev-pending"}
		slices.Sort(first.DeviceIDs)
		slices.Sort(second.DeviceIDs)
		if !slices.Equal(first.DeviceIDs, want) || !slices.Equal(second.DeviceIDs, want) {
			t.Fatalf("unbound %v then %v, want %v", first.DeviceIDs, second.DeviceIDs, want)
		}
		for _, id := range want {
			d, err := f.st.GetDevice(c, id)
			must(t, err)
			if d.Status != store.DeviceRevoked || !d.RevokedAt.Equal(revokedAt) {
				t.Fatalf("%s: %s at %v, want revoked at %v", id, d.Status, d.RevokedAt, revokedAt)
			}
		}
		if d, err := f.st.GetDevice(c, "dev-sc"); err != nil || d.Status != store.DeviceActive {
			t.Fatalf("security-center device: %+v, %v", d, err)
		}
		if d, err := f.st.GetDevice(c, "dev-old"); err != nil || !d.RevokedAt.Before(approvedAt) {
			t.Fatalf("old device touched: %+v, %v", d, err)
		}
		card, err := f.st.GetToken(c, "SN-U-1")
		must(t, err)
		if card.State != store.TokenUnassigned || card.DeviceID != "" {
			t.Fatalf("card %+v", card)
		}
		p, err := f.st.GetProtection(c, acct)
		must(t, err)
		if p.Login || p.Operation {
			t.Fatalf("protection %+v", p)
		}
		b, _, err := f.st.SpendAttempt(c, acct, f.clock.Now(), mfa.LockPolicy{}.LockFor)
		must(t, err)
		if b.Failures != 1 {
			t.Fatalf("failure budget not reset: %d failures", b.Failures)
		}
		audits := f.audit(t, acct, workflows.AuditAppealUnbind, "")
		if len(audits) != 1 || audits[0].Subject != "apl_u" || audits[0].Outcome != "ok" || audits[0].Details["count"] != "3" {
			t.Fatalf("audit %+v", audits)
		}
		// Without EffectsApart (histories from before) UnbindAll tells the
		// console and the owner itself; a retry sends again under the same
		// message ids, which receivers drop.
		revokes := f.outbox(t, activities.KindRevokeSessions)
		for _, r := range revokes {
			if r.Channel != notify.Console || r.To != acct || r.Data["message_id"] != "revoke-apl_u" {
				t.Fatalf("revoke_sessions %+v", revokes)
			}
		}
		if len(revokes) == 0 {
			t.Fatal("no revoke_sessions message")
		}
		ids := map[string]bool{}
		for _, n := range f.outbox(t, activities.KindAppealUnbound) {
			ids[n.Data["message_id"]] = true
		}
		if len(ids) != 2 {
			t.Fatalf("owner notices under %d message ids, want 2 (SMS and e-mail)", len(ids))
		}
	})
}

// TestUnbindAllAfterRevoke: a device the owner revoked before the unbind
// is not the unbind's; the unbind is one transaction, so no attempt can
// leave devices revoked without its audit entry.
func TestUnbindAllAfterRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		const acct = "acct-c"
		f.realNameAccount(t, acct, store.Personal, true)
		f.device(t, acct, "dev-c1", store.Virtual, store.DeviceActive, "")
		f.device(t, acct, "dev-c2", store.Virtual, store.DeviceActive, "")
		_, err := f.st.RevokeDevice(c, "dev-c1", f.clock.Now())
		must(t, err)
		f.clock.Add(time.Minute)
		out, err := f.a.UnbindAll(c, workflows.UnbindAllInput{AppealID: "apl_c", AccountID: acct, EffectsApart: true})
		must(t, err)
		if !slices.Equal(out.DeviceIDs, []string{"dev-c2"}) {
			t.Fatalf("unbound %v", out.DeviceIDs)
		}
		if a := f.audit(t, acct, workflows.AuditAppealUnbind, "ok"); len(a) != 1 || a[0].Details["devices"] != "dev-c2" {
			t.Fatalf("audit %+v", a)
		}
		// EffectsApart: nothing is sent here; the workflow's effects do it.
		if n := len(f.outbox(t, activities.KindRevokeSessions)) + len(f.outbox(t, activities.KindAppealUnbound)); n != 0 {
			t.Fatalf("%d messages sent by an unbind whose effects are apart", n)
		}
	})
}

// TestRevokeSessionsRefused: a console that refuses the webhook for good
// is an alert (audited "failed"), not an error that would hold anything.
func TestRevokeSessionsRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		f.a.Notifier = refusingNotifier{}
		if err := f.a.RevokeSessions(c, workflows.RevokeSessionsInput{AppealID: "apl_r", AccountID: "acct-r"}); err != nil {
			t.Fatalf("a refused webhook failed the activity: %v", err)
		}
		if a := f.audit(t, "acct-r", "appeal.revoke_sessions", "failed"); len(a) != 1 || a[0].Details["reason"] != "console_refused" {
			t.Fatalf("audit %+v", a)
		}
	})
}

type refusingNotifier struct{}

func (refusingNotifier) Notify(context.Context, notify.Message) error { return notify.ErrRejected }

// TestDeleteDocuments runs against a real MinIO: every object of the
// appeal goes (recorded, replaced and never recorded), other appeals'
// objects stay, the deletion is audited once with count and hashes, and a
// second run changes nothing.
func TestDeleteDocuments(t *testing.T) {
	m := harness.MinIOServer(t)
	c := ctx(t)
	bs, err := blob.Open(c, blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t), Encrypt: true})
	must(t, err)
	f := newFixture(t, storetest.SQLite(t))
	f.a.Blobs = bs
	put := func(key, body string) workflows.Document {
		t.Helper()
		o, err := bs.Put(c, key, strings.NewReader(body), int64(len(body)), 0, "image/jpeg")
		must(t, err)
		return workflows.Document{Type: workflows.DocIDHoldingPhoto, ObjectKey: key, SHA256: o.SHA256, Size: o.Size, ContentType: "image/jpeg"}
	}
	const id = "apl_d"
	d1 := put("appeals/"+id+"/id_holding_photo-1", "first photo")
	d2 := put("appeals/"+id+"/id_holding_photo-2", "second photo")
	lic := put("appeals/"+id+"/business_licence-1", "licence scan")
	lic.Type = workflows.DocBusinessLicence
	put("appeals/"+id+"/orphan", "uploaded, never recorded")
	other := put("appeals/apl_other/id_holding_photo-1", "another appeal")

	// A replaced upload goes first; a key outside the appeal is skipped.
	must(t, f.a.DeleteObjects(c, workflows.DeleteObjectsInput{AppealID: id, Keys: []string{d1.ObjectKey, other.ObjectKey}}))
	must(t, f.a.DeleteObjects(c, workflows.DeleteObjectsInput{AppealID: id, Keys: []string{d1.ObjectKey}})) // again: idempotent
	if _, err := bs.Stat(c, d1.ObjectKey); err == nil {
		t.Fatal("replaced object still there")
	}
	if _, err := bs.Stat(c, other.ObjectKey); err != nil {
		t.Fatalf("another appeal's object: %v", err)
	}

	in := workflows.DeleteDocumentsInput{AppealID: id, AccountID: "acct-d", Documents: []workflows.Document{d1, d2, lic}}
	out, err := f.a.DeleteDocuments(c, in)
	must(t, err)
	if out.Deleted != 4 {
		t.Fatalf("deleted %d, want 4", out.Deleted)
	}
	keys, err := bs.Keys(c, "appeals/"+id+"/")
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("left %v", keys)
	}
	if _, err := bs.Stat(c, other.ObjectKey); err != nil {
		t.Fatalf("another appeal's object: %v", err)
	}
	again, err := f.a.DeleteDocuments(c, in)
	must(t, err)
	if again.Deleted != 4 {
		t.Fatalf("second run deleted %d", again.Deleted)
	}
	audits := f.audit(t, "acct-d", workflows.AuditAppealDocumentsDeleted, "ok")
	if len(audits) != 1 || audits[0].Subject != id || audits[0].Details["count"] != "4" {
		t.Fatalf("audit %+v", audits)
	}
	hashes := strings.Split(audits[0].Details["sha256"], ",")
	for _, d := range []workflows.Document{d1, d2, lic} {
		if !slices.Contains(hashes, d.SHA256) {
			t.Fatalf("audit hashes %v lack %s", hashes, d.SHA256)
		}
	}
	sum := sha256.Sum256([]byte("first photo"))
	if hashes[0] == "" || !slices.Contains(hashes, hex.EncodeToString(sum[:])) {
		t.Fatalf("audit hashes %v", hashes)
	}
	for k, v := range audits[0].Details {
		if bytes.Contains([]byte(v), []byte("photo")) && k != "sha256" {
			t.Fatalf("audit detail %s holds document bytes", k)
		}
	}

	// Without a document store the deletion fails for good, not forever.
	f.a.Blobs = nil
	_, err = f.a.DeleteDocuments(c, workflows.DeleteDocumentsInput{AppealID: "apl_x", AccountID: "acct-x", Documents: []workflows.Document{d1}})
	wantType(t, err, activities.ErrTypeNoDocumentStore)
}

// Package storetest is the contract every store.Store implementation
// passes. An implementation's test calls Run with a function that opens a
// fresh, migrated store:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return mustOpen(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// RawExecer is implemented by stores that let tests run SQL outside the
// store's API; the append-only audit case needs it.
type RawExecer interface {
	ExecRaw(ctx context.Context, sql string, args ...any) error
}

// Run runs the contract against stores made by open. open is called once
// per group of cases and must return an empty, migrated store that it
// closes on t.Cleanup. Groups run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"Accounts", testAccounts},
		{"Audit", testAudit},
		{"AuditAppendOnly", testAuditAppendOnly},
		{"AuditConcurrentAppends", testAuditConcurrent},
		{"Outbox", testOutbox},
		{"Devices", testDevices},
		{"AdvanceStepRace", testAdvanceStepRace},
		{"Protection", testProtection},
		{"Tokens", testTokens},
		{"AssignTokenRace", testAssignTokenRace},
		{"SMSChallenges", testSMSChallenges},
		{"Sealed", testSealed},
		{"Budget", testBudget},
		{"SpendAttemptRace", testSpendAttemptRace},
		{"Check", testCheck},
		{"CheckRace", testCheckRace},
		{"WholeCheck", testWholeCheck},
		{"WholeCheckRace", testWholeCheckRace},
		{"Grants", testGrants},
		{"ConsumeGrantRace", testConsumeGrantRace},
		{"GrantCleanup", testGrantCleanup},
		{"SecurityCenter", testSecurityCenter},
		{"SecurityCenterRace", testSecurityCenterRace},
		{"Appeals", testAppeals},
		{"AppealStatus", testAppealStatus},
		{"AppealCreateRace", testAppealCreateRace},
		{"ListAppeals", testListAppeals},
		{"RateLimit", testRateLimit},
		{"RateLimitRace", testRateLimitRace},
		{"RatePeek", testRatePeek},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeRace", testRecoveryCodeRace},
		{"WebAuthn", testWebAuthn},
		{"ChallengePrune", testChallengePrune},
		{"UnbindAccount", testUnbindAccount},
		{"Sessions", testSessions},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// must fails the test when err is not nil.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// checkTime fails unless got is UTC, has at most microsecond precision and
// lies within [from, to] (truncated).
func checkTime(t *testing.T, what string, got, from, to time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
	if got.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v has sub-microsecond digits", what, got)
	}
	if got.Before(from.Truncate(time.Microsecond)) || got.After(to) {
		t.Errorf("%s = %v, want within [%v, %v]", what, got, from, to)
	}
}

func testPing(t *testing.T, s store.Store) {
	must(t, s.Ping(ctx(t)))
}

func account(id string, logins ...store.Login) store.Account {
	return store.Account{
		ID:          id,
		Type:        store.Personal,
		BoundPhone:  "+8613800000000",
		Email:       id + "@example.com",
		Logins:      logins,
		RealName:    store.RealName{Verified: true, Name: "Zhang San", IDNumber: "11010519491231002X"},
		LoginMethod: store.LoginMFA,
	}
}

func testAccounts(t *testing.T, s store.Store) {
	c := ctx(t)
	qq := store.Login{Kind: store.LoginQQ, ID: "10001"}
	mail := store.Login{Kind: store.LoginEmail, ID: "a@example.com"}

	t.Run("create and get", func(t *testing.T) {
		before := time.Now()
		created, err := s.PutAccount(c, account("acc-1", qq, mail, qq))
		must(t, err)
		if !created {
			t.Fatal("PutAccount of a new account reported created=false")
		}
		got, err := s.GetAccount(c, "acc-1")
		must(t, err)
		checkTime(t, "CreatedAt", got.CreatedAt, before, time.Now())
		if !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("UpdatedAt %v != CreatedAt %v on create", got.UpdatedAt, got.CreatedAt)
		}
		want := account("acc-1", qq, mail) // the repeated login is dropped
		want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
		want.Locale, want.TimeZone = store.DefaultLocale, store.DefaultTimeZone // none given: the defaults
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetAccount =\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("replace keeps CreatedAt", func(t *testing.T) {
		first, err := s.GetAccount(c, "acc-1")
		must(t, err)
		time.Sleep(2 * time.Millisecond)
		a := account("acc-1", mail)
		a.Type, a.Company = store.Enterprise, store.Company{Name: "ACME", RegNumber: "91350100M000100Y43"}
		a.CreatedAt = time.Unix(1, 0) // ignored
		created, err := s.PutAccount(c, a)
		must(t, err)
		if created {
			t.Fatal("PutAccount of an existing account reported created=true")
		}
		got, err := s.GetAccount(c, "acc-1")
		must(t, err)
		if !got.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("CreatedAt changed from %v to %v", first.CreatedAt, got.CreatedAt)
		}
		if !got.UpdatedAt.After(first.UpdatedAt) {
			t.Errorf("UpdatedAt %v not after %v", got.UpdatedAt, first.UpdatedAt)
		}
		if got.Type != store.Enterprise || got.Company.Name != "ACME" || !reflect.DeepEqual(got.Logins, []store.Login{mail}) {
			t.Errorf("replace not applied: %+v", got)
		}
		if _, err := s.FindAccountByLogin(c, qq.Kind, qq.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("login removed by replace still found: %v", err)
		}
	})
	t.Run("locale and time zone", func(t *testing.T) {
		a := account("acc-lang")
		a.Locale, a.TimeZone = "en", "Europe/Berlin"
		_, err := s.PutAccount(c, a)
		must(t, err)
		got, err := s.GetAccount(c, "acc-lang")
		must(t, err)
		if got.Locale != "en" || got.TimeZone != "Europe/Berlin" {
			t.Errorf("locale, time zone = %q, %q, want en, Europe/Berlin", got.Locale, got.TimeZone)
		}
		a.Locale, a.TimeZone = "", "" // a replace without them goes back to the defaults
		_, err = s.PutAccount(c, a)
		must(t, err)
		got, err = s.GetAccount(c, "acc-lang")
		must(t, err)
		if got.Locale != store.DefaultLocale || got.TimeZone != store.DefaultTimeZone {
			t.Errorf("after a replace without them: %q, %q, want %q, %q", got.Locale, got.TimeZone, store.DefaultLocale, store.DefaultTimeZone)
		}
	})
	t.Run("no logins", func(t *testing.T) {
		_, err := s.PutAccount(c, account("acc-none"))
		must(t, err)
		got, err := s.GetAccount(c, "acc-none")
		must(t, err)
		if got.Logins == nil || len(got.Logins) != 0 {
			t.Errorf("Logins = %#v, want empty non-nil", got.Logins)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, err := s.GetAccount(c, "nobody")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.FindAccountByLogin(c, store.LoginWeChat, "nobody")
		wantErr(t, err, store.ErrNotFound)
	})
	t.Run("find by login", func(t *testing.T) {
		wx := store.Login{Kind: store.LoginWeChat, ID: "wx-2"}
		_, err := s.PutAccount(c, account("acc-2", wx, store.Login{Kind: store.LoginWeChatOfficial, ID: "wx-2"}))
		must(t, err)
		tests := []struct {
			kind store.LoginKind
			id   string
			want string
		}{
			{store.LoginEmail, "a@example.com", "acc-1"},
			{store.LoginWeChat, "wx-2", "acc-2"},
			{store.LoginWeChatOfficial, "wx-2", "acc-2"},
			{store.LoginQQ, "wx-2", ""},
		}
		for _, tt := range tests {
			got, err := s.FindAccountByLogin(c, tt.kind, tt.id)
			if tt.want == "" {
				wantErr(t, err, store.ErrNotFound)
				continue
			}
			must(t, err)
			if got.ID != tt.want {
				t.Errorf("FindAccountByLogin(%s, %s) = %s, want %s", tt.kind, tt.id, got.ID, tt.want)
			}
		}
	})
	t.Run("login of another account", func(t *testing.T) {
		_, err := s.PutAccount(c, account("acc-3", mail))
		wantErr(t, err, store.ErrConflict)
		if _, err := s.GetAccount(c, "acc-3"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused account was stored: %v", err)
		}
	})
}

func testAudit(t *testing.T, s store.Store) {
	c := ctx(t)
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	var ids []int64
	for i := range 10 {
		e := store.AuditEntry{
			Actor: "console", Action: "device.bind", Outcome: "ok",
			AccountID: fmt.Sprintf("acc-%d", i%2), Subject: fmt.Sprintf("dev-%d", i%3),
			RemoteIP: "192.0.2.1", Details: map[string]string{"i": fmt.Sprint(i)},
		}
		if i == 0 {
			e.At = at
		}
		before := time.Now()
		got, err := s.AppendAudit(c, e)
		must(t, err)
		if got.ID == 0 || (len(ids) > 0 && got.ID <= ids[len(ids)-1]) {
			t.Fatalf("AppendAudit ID %d after %v", got.ID, ids)
		}
		if i == 0 {
			if want := at.UTC().Truncate(time.Microsecond); !got.At.Equal(want) || got.At.Location() != time.UTC {
				t.Errorf("At = %v, want %v", got.At, want)
			}
		} else {
			checkTime(t, "assigned At", got.At, before, time.Now())
		}
		ids = append(ids, got.ID)
	}

	all, err := s.ListAudit(c, store.AuditFilter{})
	must(t, err)
	if len(all) != 10 || all[0].ID != ids[9] || all[9].ID != ids[0] {
		t.Fatalf("ListAudit returned %d entries, want 10 newest first", len(all))
	}
	first := all[9]
	want := store.AuditEntry{ID: ids[0], At: at.UTC().Truncate(time.Microsecond), Actor: "console", Action: "device.bind",
		Outcome: "ok", AccountID: "acc-0", Subject: "dev-0", RemoteIP: "192.0.2.1", Details: map[string]string{"i": "0"}}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("oldest entry =\n%+v\nwant\n%+v", first, want)
	}

	tests := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"account", store.AuditFilter{AccountID: "acc-1"}, []int64{ids[9], ids[7], ids[5], ids[3], ids[1]}},
		{"subject", store.AuditFilter{Subject: "dev-0"}, []int64{ids[9], ids[6], ids[3], ids[0]}},
		{"account and subject", store.AuditFilter{AccountID: "acc-0", Subject: "dev-0"}, []int64{ids[6], ids[0]}},
		{"limit", store.AuditFilter{Limit: 3}, []int64{ids[9], ids[8], ids[7]}},
		{"page", store.AuditFilter{BeforeID: ids[7], Limit: 3}, []int64{ids[6], ids[5], ids[4]}},
		{"last page", store.AuditFilter{BeforeID: ids[1]}, []int64{ids[0]}},
		{"past the end", store.AuditFilter{BeforeID: ids[0]}, nil},
		{"no match", store.AuditFilter{AccountID: "other"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(c, tt.f)
			must(t, err)
			if got == nil {
				t.Error("ListAudit returned nil, want an empty slice")
			}
			gotIDs := []int64{}
			for _, e := range got {
				gotIDs = append(gotIDs, e.ID)
			}
			if len(gotIDs) != len(tt.want) || (len(tt.want) > 0 && !reflect.DeepEqual(gotIDs, tt.want)) {
				t.Errorf("IDs = %v, want %v", gotIDs, tt.want)
			}
		})
	}
	t.Run("paging walks everything once", func(t *testing.T) {
		var seen []int64
		var before int64
		for {
			page, err := s.ListAudit(c, store.AuditFilter{BeforeID: before, Limit: 4})
			must(t, err)
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				seen = append(seen, e.ID)
			}
			before = page[len(page)-1].ID
		}
		if len(seen) != 10 {
			t.Errorf("paging saw %d entries, want 10", len(seen))
		}
	})
}

func testAuditAppendOnly(t *testing.T, s store.Store) {
	c := ctx(t)
	raw, ok := s.(RawExecer)
	if !ok {
		t.Fatalf("%T does not implement storetest.RawExecer", s)
	}
	e, err := s.AppendAudit(c, store.AuditEntry{Actor: "system", Action: "test", Outcome: "ok", AccountID: "acc"})
	must(t, err)
	for _, sql := range []string{
		"UPDATE audit_log SET outcome = 'denied'",
		"UPDATE audit_log SET actor = 'someone else' WHERE id = " + fmt.Sprint(e.ID),
		"DELETE FROM audit_log",
		"DELETE FROM audit_log WHERE id = " + fmt.Sprint(e.ID),
	} {
		t.Run(sql, func(t *testing.T) {
			if err := raw.ExecRaw(c, sql); err == nil {
				t.Fatal("the database accepted a change to the audit log")
			}
		})
	}
	got, err := s.ListAudit(c, store.AuditFilter{})
	must(t, err)
	if len(got) != 1 || !reflect.DeepEqual(got[0], e) {
		t.Errorf("audit log after refused changes = %+v, want [%+v]", got, e)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	c := ctx(t)
	const goroutines, each = 50, 10
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				_, err := s.AppendAudit(c, store.AuditEntry{Actor: "system", Action: "load", Outcome: "ok",
					AccountID: "acc-load", Details: map[string]string{"g": fmt.Sprint(g), "i": fmt.Sprint(i)}})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var before int64
	for {
		page, err := s.ListAudit(c, store.AuditFilter{AccountID: "acc-load", BeforeID: before, Limit: 1000})
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("ID %d listed twice", e.ID)
			}
			seen[e.ID] = true
		}
		before = page[len(page)-1].ID
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d entries stored, want %d", len(seen), goroutines*each)
	}
}

func testOutbox(t *testing.T, s store.Store) {
	c := ctx(t)
	at := time.Date(2026, 5, 1, 10, 0, 0, 999, time.UTC)
	var ids []int64
	for i, to := range []string{"+861", "+862", "+861", "a@example.com"} {
		m := store.OutboxMessage{Channel: "sms", To: to, Kind: "sms_code", Body: fmt.Sprintf("message %d", i)}
		if i == 0 {
			m.At, m.Data = at, map[string]string{"binding_id": "b-1"}
		}
		before := time.Now()
		got, err := s.AddOutbox(c, m)
		must(t, err)
		if got.ID == 0 {
			t.Fatal("AddOutbox assigned no ID")
		}
		if i == 0 && !got.At.Equal(at.Truncate(time.Microsecond)) {
			t.Errorf("At = %v, want %v", got.At, at.Truncate(time.Microsecond))
		}
		if i > 0 {
			checkTime(t, "assigned At", got.At, before, time.Now())
		}
		ids = append(ids, got.ID)
	}
	tests := []struct {
		to    string
		limit int
		want  []int64
	}{
		{"+861", 0, []int64{ids[2], ids[0]}},
		{"+862", 0, []int64{ids[1]}},
		{"", 0, []int64{ids[3], ids[2], ids[1], ids[0]}},
		{"", 2, []int64{ids[3], ids[2]}},
		{"nobody", 0, []int64{}},
	}
	for _, tt := range tests {
		got, err := s.ListOutbox(c, tt.to, tt.limit)
		must(t, err)
		gotIDs := []int64{}
		for _, m := range got {
			gotIDs = append(gotIDs, m.ID)
		}
		if got == nil || !reflect.DeepEqual(gotIDs, tt.want) {
			t.Errorf("ListOutbox(%q, %d) IDs = %v, want %v", tt.to, tt.limit, gotIDs, tt.want)
		}
	}
	got, err := s.ListOutbox(c, "+861", 0)
	must(t, err)
	want := store.OutboxMessage{ID: ids[0], At: at.Truncate(time.Microsecond), Channel: "sms", To: "+861", Kind: "sms_code",
		Body: "message 0", Data: map[string]string{"binding_id": "b-1"}}
	if !reflect.DeepEqual(got[1], want) {
		t.Errorf("message =\n%+v\nwant\n%+v", got[1], want)
	}
}

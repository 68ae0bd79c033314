package e2e

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// TestBruteForceAcrossReplicas sends 1,000 wrong codes for one account
// through two API replicas sharing PostgreSQL. The lock is progressive with
// Retry-After, shared by both replicas, and no more than 100 consecutive
// failures are ever evaluated; then even a valid code is refused.
func TestBruteForceAcrossReplicas(t *testing.T) {
	st := storetest.Postgres(t)
	s := newStack(t, st, 2)
	const acct = "e2e-brute"
	s.putAccount(acct, "13800000009", store.LoginMFA)
	secret, _ := mfa.NewSecret(nil)
	sealedID := "dev-brute"
	sealed, err := s.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), sealedID))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.CreateDevice(ctx, store.Device{ID: sealedID, AccountID: acct, Type: store.Virtual, Secret: sealed, Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetProtection(ctx, acct, store.Protection{Login: true, Operation: true}); err != nil {
		t.Fatal(err)
	}

	evaluated, locked := 0, 0
	var retryAfters []int
	hard := false
	for i := 0; i < 1000; i++ {
		wrong := mfa.TOTP(secret, s.clock.Now(), mfa.Params{})
		wrong = strconv.Itoa((mustAtoi(wrong) + 500000) % 1000000)
		for len(wrong) < 6 {
			wrong = "0" + wrong
		}
		code, out, hdr := s.call(i%2, http.MethodPost, "/v1/accounts/"+acct+"/mfa/verify", consoleKey, map[string]any{"code": wrong, "purpose": "login"})
		switch code {
		case http.StatusUnauthorized:
			evaluated++
		case http.StatusTooManyRequests:
			locked++
			if errCode(out) != "locked" || hdr.Get("Retry-After") == "" {
				t.Fatalf("429 without locked/Retry-After: %v %v", out, hdr)
			}
			ra, _ := strconv.Atoi(hdr.Get("Retry-After"))
			if ra >= 86400 {
				hard = true
				continue
			}
			if len(retryAfters) == 0 || retryAfters[len(retryAfters)-1] != ra {
				retryAfters = append(retryAfters, ra)
			}
			// Wait the lock out on the shared clock, as a patient attacker would.
			s.clock.Advance(time.Duration(ra) * time.Second)
		default:
			t.Fatalf("attempt %d: %d %v", i, code, out)
		}
	}
	t.Logf("1000 wrong codes: %d evaluated, %d refused while locked; lock lengths seen (s): %v", evaluated, locked, retryAfters)
	if evaluated > 100 {
		t.Fatalf("%d consecutive failures were evaluated; the ceiling is 100", evaluated)
	}
	if evaluated < 100 || !hard {
		t.Fatalf("evaluated %d, hard lock %v: want exactly the ceiling, then a hard lock", evaluated, hard)
	}
	if len(retryAfters) < 4 || retryAfters[0] > 60 || retryAfters[1] <= retryAfters[0] {
		t.Fatalf("lock lengths %v are not progressive from 1 minute", retryAfters)
	}
	// Even the right code is refused now, on either replica.
	for i := range 2 {
		if code, out, _ := s.call(i, http.MethodPost, "/v1/accounts/"+acct+"/mfa/verify", consoleKey, map[string]any{"code": mfa.TOTP(secret, s.clock.Now(), mfa.Params{}), "purpose": "login"}); code != http.StatusTooManyRequests {
			t.Fatalf("valid code after the hard lock on replica %d = %d %v", i, code, out)
		}
	}
	es, _ := st.ListAudit(ctx, store.AuditFilter{AccountID: acct, Limit: 1000})
	locks := 0
	for _, e := range es {
		if e.Action == "mfa.lock" {
			locks++
		}
	}
	if locks == 0 {
		t.Fatal("no lock in the audit log")
	}

	// Support clears the hard lock; the owner's right code works again.
	if code, out, _ := s.call(0, http.MethodDelete, "/v1/admin/accounts/e2e-nobody/mfa/lock", s.admin, nil); code != http.StatusNotFound {
		t.Fatalf("unlock of an unknown account = %d %v, want 404", code, out)
	}
	if code, out, _ := s.call(1, http.MethodDelete, "/v1/admin/accounts/"+acct+"/mfa/lock", s.admin, nil); code != http.StatusOK || out["unlocked"] != true {
		t.Fatalf("unlock = %d %v", code, out)
	}
	if code, out, _ := s.call(0, http.MethodPost, "/v1/accounts/"+acct+"/mfa/verify", consoleKey, map[string]any{"code": mfa.TOTP(secret, s.clock.Now(), mfa.Params{}), "purpose": "login"}); code != http.StatusOK {
		t.Fatalf("valid code after the unlock = %d %v", code, out)
	}
	es, _ = st.ListAudit(ctx, store.AuditFilter{AccountID: acct, Limit: 10})
	unlocked := false
	for _, e := range es {
		if e.Action == "mfa.unlock" && e.Outcome == "ok" && e.Actor == "admin:admin-e2e" {
			unlocked = true
		}
	}
	if !unlocked {
		t.Fatal("no mfa.unlock entry by the admin in the audit log")
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

func recoverySet(prefix string, n int) []store.RecoveryCode {
	out := make([]store.RecoveryCode, n)
	for i := range out {
		out[i] = store.RecoveryCode{ID: fmt.Sprintf("%s-%d", prefix, i), KeyID: "k1", Hash: bytes.Repeat([]byte{byte(i + 1)}, 32)}
	}
	return out
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	c := ctx(t)
	before := time.Now()
	ok, err := s.ReplaceRecoveryCodes(c, "acc-rc", recoverySet("a", 10), true)
	must(t, err)
	if !ok {
		t.Fatal("the first set with onlyIfNone was not stored")
	}
	got, err := s.ListRecoveryCodes(c, "acc-rc")
	must(t, err)
	if len(got) != 10 {
		t.Fatalf("listed %d codes, want 10", len(got))
	}
	for i, rc := range got {
		if rc.AccountID != "acc-rc" || rc.KeyID != "k1" || !bytes.Equal(rc.Hash, bytes.Repeat([]byte{byte(i + 1)}, 32)) || !rc.UsedAt.IsZero() {
			t.Fatalf("code %d = %+v", i, rc)
		}
		checkTime(t, "CreatedAt", rc.CreatedAt, before, time.Now())
	}
	if other, err := s.ListRecoveryCodes(c, "acc-other"); err != nil || len(other) != 0 {
		t.Fatalf("another account lists %d codes, %v", len(other), err)
	}

	t.Run("onlyIfNone keeps a set with unused codes", func(t *testing.T) {
		ok, err := s.ReplaceRecoveryCodes(c, "acc-rc", recoverySet("b", 10), true)
		must(t, err)
		if ok {
			t.Fatal("onlyIfNone replaced a set that has unused codes")
		}
		got, _ := s.ListRecoveryCodes(c, "acc-rc")
		if len(got) != 10 || got[0].ID != "a-0" {
			t.Fatalf("the set changed: %d codes, first %q", len(got), got[0].ID)
		}
	})
	t.Run("use once", func(t *testing.T) {
		ok, err := s.UseRecoveryCode(c, "acc-other", "a-0", time.Now())
		must(t, err)
		if ok {
			t.Fatal("another account used the code")
		}
		ok, err = s.UseRecoveryCode(c, "acc-rc", "a-0", time.Now())
		must(t, err)
		if !ok {
			t.Fatal("an unused code could not be used")
		}
		ok, err = s.UseRecoveryCode(c, "acc-rc", "a-0", time.Now())
		must(t, err)
		if ok {
			t.Fatal("a used code was used again")
		}
		ok, err = s.UseRecoveryCode(c, "acc-rc", "nope", time.Now())
		must(t, err)
		if ok {
			t.Fatal("an unknown code was used")
		}
		got, _ := s.ListRecoveryCodes(c, "acc-rc")
		if len(got) != 9 || got[0].ID != "a-1" {
			t.Fatalf("after one use: %d unused codes, first %q", len(got), got[0].ID)
		}
	})
	t.Run("replace retires the old set", func(t *testing.T) {
		ok, err := s.ReplaceRecoveryCodes(c, "acc-rc", recoverySet("c", 10), false)
		must(t, err)
		if !ok {
			t.Fatal("replace reported false")
		}
		got, _ := s.ListRecoveryCodes(c, "acc-rc")
		if len(got) != 10 || got[0].ID != "c-0" {
			t.Fatalf("after replace: %d codes, first %q", len(got), got[0].ID)
		}
		ok, err = s.UseRecoveryCode(c, "acc-rc", "a-5", time.Now())
		must(t, err)
		if ok {
			t.Fatal("a code of the old set was used after the replacement")
		}
	})
	t.Run("onlyIfNone after every code is used", func(t *testing.T) {
		mustOK(t)(s.ReplaceRecoveryCodes(c, "acc-rc2", recoverySet("d", 2), false))
		for _, id := range []string{"d-0", "d-1"} {
			mustOK(t)(s.UseRecoveryCode(c, "acc-rc2", id, time.Now()))
		}
		ok, err := s.ReplaceRecoveryCodes(c, "acc-rc2", recoverySet("e", 10), true)
		must(t, err)
		if !ok {
			t.Fatal("onlyIfNone refused an account whose codes are all used")
		}
	})
	t.Run("an existing id conflicts and changes nothing", func(t *testing.T) {
		_, err := s.ReplaceRecoveryCodes(c, "acc-rc3", recoverySet("c", 1), false)
		wantErr(t, err, store.ErrConflict)
		got, _ := s.ListRecoveryCodes(c, "acc-rc")
		if len(got) != 10 {
			t.Fatalf("a failed replacement of another account changed this one: %d codes", len(got))
		}
	})
	t.Run("clear", func(t *testing.T) {
		mustOK(t)(s.UseRecoveryCode(c, "acc-rc", "c-0", time.Now()))
		n, err := s.ClearRecoveryCodes(c, "acc-rc")
		must(t, err)
		if n != 9 {
			t.Fatalf("cleared %d unused codes, want 9", n)
		}
		got, _ := s.ListRecoveryCodes(c, "acc-rc")
		if len(got) != 0 {
			t.Fatalf("%d codes left after clear", len(got))
		}
		if n, err := s.ClearRecoveryCodes(c, "acc-rc"); err != nil || n != 0 {
			t.Fatalf("second clear = %d, %v", n, err)
		}
	})
}

// mustOK returns a function that fails the test when given an error.
func mustOK(t *testing.T) func(bool, error) {
	return func(_ bool, err error) {
		t.Helper()
		must(t, err)
	}
}

func testRecoveryCodeRace(t *testing.T, s store.Store) {
	c := ctx(t)
	mustOK(t)(s.ReplaceRecoveryCodes(c, "acc-rcr", recoverySet("r", 10), false))
	var wins atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			ok, err := s.UseRecoveryCode(c, "acc-rcr", "r-3", time.Now())
			if err != nil {
				errs <- err
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	// Concurrent first sets: exactly one is stored.
	var stored atomic.Int32
	for i := range 10 {
		wg.Go(func() {
			ok, err := s.ReplaceRecoveryCodes(c, "acc-rcr-new", recoverySet(fmt.Sprintf("n%d", i), 10), true)
			if err != nil {
				errs <- err
			}
			if ok {
				stored.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d of 20 concurrent uses of one code succeeded, want exactly 1", n)
	}
	if n := stored.Load(); n != 1 {
		t.Fatalf("%d of 10 concurrent first sets were stored, want exactly 1", n)
	}
	got, err := s.ListRecoveryCodes(c, "acc-rcr-new")
	must(t, err)
	if len(got) != 10 {
		t.Fatalf("%d codes after concurrent first sets, want 10", len(got))
	}
}

package storetest

import (
	"bytes"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// KeyUsage is a store with the key-usage report of `mfaflow keys status`.
type KeyUsage interface {
	store.Store
	store.KeyUsageStore
}

// RunKeyUsage is the contract of store.KeyUsageStore; each store's tests
// call it with a fresh, migrated store.
func RunKeyUsage(t *testing.T, open func(t *testing.T) KeyUsage) {
	t.Run("CountRecoveryCodesByKey", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		got, err := s.CountRecoveryCodesByKey(c)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("empty store: %v", got)
		}
		set := func(account, keyID string, n int) []store.RecoveryCode {
			out := make([]store.RecoveryCode, n)
			for i := range out {
				out[i] = store.RecoveryCode{ID: fmt.Sprintf("%s-%d", account, i), KeyID: keyID, Hash: bytes.Repeat([]byte{byte(i + 1)}, 32)}
			}
			return out
		}
		_, err = s.ReplaceRecoveryCodes(c, "acc-ku1", set("acc-ku1", "old", 10), false)
		must(t, err)
		_, err = s.ReplaceRecoveryCodes(c, "acc-ku2", set("acc-ku2", "new", 4), false)
		must(t, err)
		// Used codes are never checked again: not counted.
		for _, id := range []string{"acc-ku1-0", "acc-ku1-1"} {
			ok, err := s.UseRecoveryCode(c, "acc-ku1", id, time.Now())
			must(t, err)
			if !ok {
				t.Fatalf("code %s not used", id)
			}
		}
		got, err = s.CountRecoveryCodesByKey(c)
		must(t, err)
		if want := map[string]int{"old": 8, "new": 4}; !maps.Equal(got, want) {
			t.Fatalf("counts = %v, want %v", got, want)
		}
		// A new set replaces the old one: its key's count drops to none.
		_, err = s.ReplaceRecoveryCodes(c, "acc-ku1", set("acc-ku1b", "new", 10), false)
		must(t, err)
		got, err = s.CountRecoveryCodesByKey(c)
		must(t, err)
		if want := map[string]int{"new": 14}; !maps.Equal(got, want) {
			t.Fatalf("after replacing: counts = %v, want %v", got, want)
		}
	})
}

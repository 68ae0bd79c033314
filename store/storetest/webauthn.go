package storetest

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

func webauthnCred(id byte) store.WebAuthnCredential {
	return store.WebAuthnCredential{CredentialID: []byte{id, 1, 2, 3}, UserHandle: bytes.Repeat([]byte{9}, 32), PublicKey: []byte{0xa5, id},
		SignCount: 7, AAGUID: bytes.Repeat([]byte{id}, 16), Transports: []string{"usb", "nfc"}, BackupEligible: true, UserVerified: true, AttestationType: "none"}
}

func testWebAuthn(t *testing.T, s store.Store) {
	c := ctx(t)
	before := time.Now()
	// Whatever the caller passes, the device is an active webauthn device
	// without a secret.
	d, err := s.CreateWebAuthnDevice(c, store.Device{ID: "wa-1", AccountID: "acc-wa", Name: "YubiKey 5", Type: store.Virtual,
		Secret: mfa.Sealed{KeyID: "k", Ciphertext: []byte("x")}, Algorithm: "SHA1", Digits: 6}, webauthnCred(1))
	must(t, err)
	if d.Type != store.WebAuthn || d.Status != store.DeviceActive || d.Name != "YubiKey 5" || d.Secret.KeyID != "" || d.Digits != 0 {
		t.Fatalf("device = %+v", d)
	}
	checkTime(t, "BoundAt", d.BoundAt, before, time.Now())
	if _, err := s.CreateWebAuthnDevice(c, store.Device{ID: "wa-dup", AccountID: "acc-wa"}, webauthnCred(1)); err == nil {
		t.Fatal("a second device with the same credential id was stored")
	} else {
		wantErr(t, err, store.ErrConflict)
	}
	if _, err := s.GetDevice(c, "wa-dup"); err == nil {
		t.Fatal("the refused credential left its device behind")
	}
	_, err = s.CreateWebAuthnDevice(c, store.Device{ID: "wa-2", AccountID: "acc-wa"}, webauthnCred(2))
	must(t, err)
	_, err = s.CreateWebAuthnDevice(c, store.Device{ID: "wa-other", AccountID: "acc-wa-other"}, webauthnCred(3))
	must(t, err)

	creds, err := s.ListWebAuthnCredentials(c, "acc-wa")
	must(t, err)
	if len(creds) != 2 || creds[0].DeviceID != "wa-1" || creds[1].DeviceID != "wa-2" {
		t.Fatalf("credentials = %+v", creds)
	}
	want := webauthnCred(1)
	got := creds[0]
	if !bytes.Equal(got.CredentialID, want.CredentialID) || !bytes.Equal(got.UserHandle, want.UserHandle) || !bytes.Equal(got.PublicKey, want.PublicKey) ||
		got.SignCount != 7 || !bytes.Equal(got.AAGUID, want.AAGUID) || len(got.Transports) != 2 || got.Transports[1] != "nfc" ||
		!got.BackupEligible || got.BackupState || !got.UserVerified || got.AttestationType != "none" || got.AccountID != "acc-wa" {
		t.Fatalf("credential round trip: %+v", got)
	}
	// Sealed-secret rotation never sees webauthn devices.
	rows, err := s.ListSealed(c, store.SealedDevices, "", 1000)
	must(t, err)
	for _, r := range rows {
		if r.ID == "wa-1" {
			t.Fatal("ListSealed lists a webauthn device")
		}
	}

	t.Run("sign count compare-and-set", func(t *testing.T) {
		ok, err := s.AdvanceSignCount(c, "wa-1", 6, 8, time.Now())
		must(t, err)
		if ok {
			t.Fatal("advanced from a stale counter")
		}
		at := time.Now()
		ok, err = s.AdvanceSignCount(c, "wa-1", 7, 8, at)
		must(t, err)
		if !ok {
			t.Fatal("could not advance 7 -> 8")
		}
		creds, _ := s.ListWebAuthnCredentials(c, "acc-wa")
		if creds[0].SignCount != 8 {
			t.Fatalf("sign count = %d, want 8", creds[0].SignCount)
		}
		d, _ := s.GetDevice(c, "wa-1")
		checkTime(t, "LastUsedAt", d.LastUsedAt, at, time.Now())
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if ok, err := s.AdvanceSignCount(c, "wa-1", 8, 9, time.Now()); err == nil && ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of 20 concurrent advances won, want 1", n)
		}
		if _, err := s.RevokeDevice(c, "wa-2", time.Now()); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.AdvanceSignCount(c, "wa-2", 7, 8, time.Now()); ok {
			t.Fatal("a revoked device's counter advanced")
		}
		if creds, _ := s.ListWebAuthnCredentials(c, "acc-wa"); len(creds) != 1 {
			t.Fatalf("a revoked device's credential is still listed: %d", len(creds))
		}
	})

	t.Run("challenges", func(t *testing.T) {
		now := time.Now()
		ch, err := s.CreateWebAuthnChallenge(c, store.WebAuthnChallenge{AccountID: "acc-wa", Purpose: "operation", Action: "cvm:DeleteInstance",
			Resource: "vm-1", Session: []byte(`{"challenge":"x"}`), ExpiresAt: now.Add(5 * time.Minute)})
		must(t, err)
		if ch.ID == "" {
			t.Fatal("no id assigned")
		}
		checkTime(t, "CreatedAt", ch.CreatedAt, now, time.Now())
		_, err = s.UseWebAuthnChallenge(c, ch.ID, "acc-other", now)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.UseWebAuthnChallenge(c, "nope", "acc-wa", now)
		wantErr(t, err, store.ErrNotFound)
		got, err := s.UseWebAuthnChallenge(c, ch.ID, "acc-wa", now)
		must(t, err)
		if got.Purpose != "operation" || got.Action != "cvm:DeleteInstance" || got.Resource != "vm-1" || string(got.Session) != `{"challenge":"x"}` || got.UsedAt.IsZero() {
			t.Fatalf("used challenge = %+v", got)
		}
		_, err = s.UseWebAuthnChallenge(c, ch.ID, "acc-wa", now)
		wantErr(t, err, store.ErrChallengeUsed)

		old, err := s.CreateWebAuthnChallenge(c, store.WebAuthnChallenge{AccountID: "acc-wa", Purpose: "login", Session: []byte("{}"), ExpiresAt: now.Add(time.Minute)})
		must(t, err)
		_, err = s.UseWebAuthnChallenge(c, old.ID, "acc-wa", now.Add(2*time.Minute))
		wantErr(t, err, store.ErrChallengeExpired)

		race, err := s.CreateWebAuthnChallenge(c, store.WebAuthnChallenge{AccountID: "acc-wa", Purpose: "login", Session: []byte("{}"), ExpiresAt: now.Add(time.Minute)})
		must(t, err)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := s.UseWebAuthnChallenge(c, race.ID, "acc-wa", now); err == nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d of 20 concurrent uses of one challenge won, want 1", n)
		}
	})
}

// testChallengePrune: creating challenges now and then deletes the ones
// expired for longer than the grace, and keeps the others (a late answer
// within the grace is still told "expired").
func testChallengePrune(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Now()
	create := func(expires time.Time) string {
		t.Helper()
		ch, err := s.CreateWebAuthnChallenge(c, store.WebAuthnChallenge{AccountID: "acc-prune", Purpose: "login", Session: []byte("{}"), ExpiresAt: expires})
		must(t, err)
		return ch.ID
	}
	// The first creation prunes, then one in every 256: create enough that
	// a prune runs after the old challenges exist.
	stale := create(now.Add(-3 * time.Hour))
	recent := create(now.Add(-10 * time.Minute))
	for range 300 {
		create(now.Add(5 * time.Minute))
	}
	_, err := s.UseWebAuthnChallenge(c, stale, "acc-prune", now)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.UseWebAuthnChallenge(c, recent, "acc-prune", now)
	wantErr(t, err, store.ErrChallengeExpired)
}

package mfa_test

import (
	"errors"
	"testing"

	"github.com/mfaflow/mfaflow/internal/webauthntest"
	"github.com/mfaflow/mfaflow/mfa"
)

func newRP(t *testing.T, aaguids ...string) *mfa.WebAuthn {
	t.Helper()
	w, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{RPID: "localhost", RPName: "mfaflow", Origins: []string{"http://localhost:8080"}, AAGUIDs: aaguids})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func register(t *testing.T, w *mfa.WebAuthn, a *webauthntest.Authenticator, u mfa.WebAuthnUser) mfa.WebAuthnCredential {
	t.Helper()
	opts, session, err := w.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := w.FinishRegistration(u, session, resp)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	return c
}

func TestWebAuthnCeremonies(t *testing.T) {
	w := newRP(t)
	user := mfa.WebAuthnUser{Handle: []byte("0123456789abcdef0123456789abcdef"), Name: "acct-1"}
	key := webauthntest.New("http://localhost:8080")
	key.Counter = 5
	cred := register(t, w, key, user)
	if cred.SignCount != 5 || len(cred.PublicKey) == 0 || len(cred.ID) != 16 || len(cred.Transports) != 1 {
		t.Fatalf("credential = %+v", cred)
	}
	user.Credentials = []mfa.WebAuthnCredential{cred}

	login := func(a *webauthntest.Authenticator, u mfa.WebAuthnUser) (mfa.LoginResult, error) {
		opts, session, err := w.BeginLogin(u)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		return w.FinishLogin(u, session, resp)
	}
	res, err := login(key, user)
	if err != nil || res.SignCount != 6 || string(res.CredentialID) != string(cred.ID) {
		t.Fatalf("login = %+v, %v", res, err)
	}

	t.Run("a replayed assertion fails against a new challenge", func(t *testing.T) {
		opts, _, _ := w.BeginLogin(user)
		resp, _ := key.Get(opts)
		_, session2, _ := w.BeginLogin(user)
		if _, err := w.FinishLogin(user, session2, resp); !errors.Is(err, mfa.ErrAssertion) || !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("replay = %v, want ErrAssertion", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		opts, session, _ := w.BeginLogin(user)
		resp, _ := key.Get(opts)
		if _, err := w.FinishLogin(user, session, webauthntest.Tamper(resp)); !errors.Is(err, mfa.ErrAssertion) {
			t.Fatalf("tampered = %v", err)
		}
	})
	t.Run("wrong origin", func(t *testing.T) {
		evil := *key
		evil.Origin = "https://evil.example"
		if _, err := login(&evil, user); !errors.Is(err, mfa.ErrAssertion) {
			t.Fatalf("wrong origin = %v", err)
		}
	})
	t.Run("another user's key", func(t *testing.T) {
		other := webauthntest.New("http://localhost:8080")
		ou := mfa.WebAuthnUser{Handle: []byte("fedcba9876543210fedcba9876543210"), Name: "acct-2"}
		register(t, w, other, ou)
		if _, err := login(other, user); !errors.Is(err, mfa.ErrAssertion) {
			t.Fatalf("another user's key = %v", err)
		}
	})
	t.Run("counter set back", func(t *testing.T) {
		u := user
		u.Credentials = []mfa.WebAuthnCredential{cred}
		u.Credentials[0].SignCount = 100 // the server saw 100; the key says less
		if _, err := login(key, u); !errors.Is(err, mfa.ErrCloned) {
			t.Fatalf("counter back = %v, want ErrCloned", err)
		}
	})
	t.Run("a key that always says 0", func(t *testing.T) {
		pk := webauthntest.New("http://localhost:8080")
		pk.ZeroCounter = true
		u := mfa.WebAuthnUser{Handle: []byte("passkeypasskeypasskeypasskey0000"), Name: "acct-3"}
		c := register(t, w, pk, u)
		u.Credentials = []mfa.WebAuthnCredential{c}
		for range 2 {
			if res, err := login(pk, u); err != nil || res.SignCount != 0 {
				t.Fatalf("zero-counter login = %+v, %v", res, err)
			}
		}
	})
	t.Run("registration for another origin", func(t *testing.T) {
		evil := webauthntest.New("https://evil.example")
		opts, session, _ := w.BeginRegistration(user)
		resp, _ := evil.Create(opts)
		if _, err := w.FinishRegistration(user, session, resp); !errors.Is(err, mfa.ErrAttestation) {
			t.Fatalf("registration from another origin = %v", err)
		}
	})
}

func TestWebAuthnAAGUIDAllowList(t *testing.T) {
	w := newRP(t, "cb69481e-8ff7-4039-93ec-0a2729a154a8")
	user := mfa.WebAuthnUser{Handle: []byte("0123456789abcdef0123456789abcdef"), Name: "acct-1"}
	key := webauthntest.New("http://localhost:8080")
	key.AAGUID = [16]byte{1, 2, 3}
	opts, session, _ := w.BeginRegistration(user)
	resp, _ := key.Create(opts)
	if _, err := w.FinishRegistration(user, session, resp); !errors.Is(err, mfa.ErrAttestation) {
		t.Fatalf("a model outside the allow-list = %v", err)
	}
	if _, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{RPID: "localhost", Origins: []string{"http://localhost"}, AAGUIDs: []string{"nope"}}); !errors.Is(err, mfa.ErrWebAuthnConfig) {
		t.Fatalf("a malformed AAGUID = %v", err)
	}
	if _, err := mfa.NewWebAuthn(mfa.WebAuthnConfig{RPID: "", Origins: nil}); !errors.Is(err, mfa.ErrWebAuthnConfig) {
		t.Fatalf("an empty RP = %v", err)
	}
}

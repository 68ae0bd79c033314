package mfa_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mfaflow/mfaflow/mfa"
)

func TestNewRecoveryCodes(t *testing.T) {
	codes, err := mfa.NewRecoveryCodes(nil, mfa.RecoveryCodeCount)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != mfa.RecoveryCodeCount {
		t.Fatalf("got %d codes, want %d", len(codes), mfa.RecoveryCodeCount)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 11 || c[5] != '-' {
			t.Fatalf("code %q is not XXXXX-XXXXX", c)
		}
		n, err := mfa.NormalizeRecoveryCode(c)
		if err != nil {
			t.Fatalf("normalize %q: %v", c, err)
		}
		if seen[n] {
			t.Fatalf("duplicate code %q", c)
		}
		seen[n] = true
	}
	// Every symbol of the alphabet turns up, and only those: a skewed or
	// truncated draw would show in 2,000 symbols.
	many, err := mfa.NewRecoveryCodes(nil, 200)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[rune]int{}
	for _, c := range many {
		for _, r := range strings.ReplaceAll(c, "-", "") {
			counts[r]++
		}
	}
	if len(counts) != len(mfa.RecoveryAlphabet) {
		t.Fatalf("saw %d distinct symbols, want %d", len(counts), len(mfa.RecoveryAlphabet))
	}
	for r := range counts {
		if !strings.ContainsRune(mfa.RecoveryAlphabet, r) {
			t.Fatalf("symbol %q outside the alphabet", r)
		}
	}
	if _, err := mfa.NewRecoveryCodes(bytes.NewReader(make([]byte, 5)), 1); err == nil {
		t.Fatal("a short random source must fail")
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"7KQ4M-X2PRD", "7KQ4MX2PRD", true},
		{"7kq4m-x2prd", "7KQ4MX2PRD", true},
		{" 7KQ4M X2PRD ", "7KQ4MX2PRD", true},
		{"7KQ4MX2PRD", "7KQ4MX2PRD", true},
		{"7KQ4M-X2PR", "", false},       // short
		{"7KQ4M-X2PRDD", "", false},     // long
		{"7KQ4M-X2PR0", "", false},      // 0 is not in the alphabet
		{"7KQ4M-X2PRI", "", false},      // nor I
		{"7KQ4M-X2PR\u0414", "", false}, // nor Cyrillic
		{"", "", false},
		{strings.Repeat("A", 100), "", false},
	} {
		got, err := mfa.NormalizeRecoveryCode(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("NormalizeRecoveryCode(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, mfa.ErrInvalidCode) {
			t.Errorf("error %v is not ErrInvalidCode", err)
		}
	}
}

func TestHashRecoveryCode(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	h := mfa.HashRecoveryCode(k1, "acct-1", "7KQ4MX2PRD")
	if !mfa.CheckRecoveryCode(k1, "acct-1", "7KQ4MX2PRD", h) {
		t.Fatal("the code does not check against its own hash")
	}
	for name, ok := range map[string]bool{
		"other key":     mfa.CheckRecoveryCode(k2, "acct-1", "7KQ4MX2PRD", h),
		"other account": mfa.CheckRecoveryCode(k1, "acct-2", "7KQ4MX2PRD", h),
		"other code":    mfa.CheckRecoveryCode(k1, "acct-1", "7KQ4MX2PRE", h),
		// Length prefixes keep the account and code apart.
		"shifted boundary": mfa.CheckRecoveryCode(k1, "acct-17", "KQ4MX2PRD", h),
	} {
		if ok {
			t.Errorf("%s: hash checked", name)
		}
	}
}

func TestDeriveKeyFor(t *testing.T) {
	old, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	oldID := old.CurrentID()
	cur, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	// A ring with a new current key and the old one behind it.
	ring, err := mfa.ParseKeyring(cur.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	k, ok := ring.DeriveKeyFor(oldID, "recovery-code")
	if !ok || !bytes.Equal(k, old.DeriveKey("recovery-code")) {
		t.Fatal("DeriveKeyFor(old id) differs from what the old ring derived")
	}
	if k2, _ := ring.DeriveKeyFor(ring.CurrentID(), "recovery-code"); !bytes.Equal(k2, ring.DeriveKey("recovery-code")) {
		t.Fatal("DeriveKeyFor(current id) differs from DeriveKey")
	}
	if _, ok := ring.DeriveKeyFor("nope", "recovery-code"); ok {
		t.Fatal("an unknown key id derived a key")
	}
}

package mfa

import (
	"bytes"
	"math"
	"testing"
)

func TestNewSMSCodeDistribution(t *testing.T) {
	const n = 100000
	var digits [6][10]int
	seen := map[string]bool{}
	for range n {
		c, err := NewSMSCode(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != SMSCodeDigits {
			t.Fatalf("code %q", c)
		}
		seen[c] = true
		for i := range c {
			if c[i] < '0' || c[i] > '9' {
				t.Fatalf("code %q", c)
			}
			digits[i][c[i]-'0']++
		}
	}
	// 10⁶·(1-e^(-n/10⁶)) ≈ 95,163 distinct codes are expected (sd about 70).
	if len(seen) < 94500 {
		t.Fatalf("only %d distinct codes of %d", len(seen), n)
	}
	// Chi-square per position, 9 degrees of freedom: p≈1e-7 at 50, so six
	// positions fail a fair source about once in 1.6 million runs, while one
	// digit 10% over-drawn gives about 110.
	for pos, counts := range digits {
		var chi float64
		for _, c := range counts {
			d := float64(c) - n/10
			chi += d * d / (n / 10)
		}
		if chi > 50 || math.IsNaN(chi) {
			t.Errorf("position %d: chi-square %.1f, counts %v", pos, chi, counts)
		}
	}
}

func TestNewSMSCodeRejectsBiasedValues(t *testing.T) {
	// 0xFFFFFFFF is above the largest multiple of 10^6 and must be redrawn;
	// then 0x00000007 gives 000007.
	r := bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 7})
	c, err := NewSMSCode(r)
	if err != nil || c != "000007" {
		t.Fatalf("NewSMSCode = %q, %v", c, err)
	}
	if _, err := NewSMSCode(bytes.NewReader([]byte{1, 2})); err == nil {
		t.Fatal("short reader accepted")
	}
}

func TestSMSCodeHash(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := HashSMSCode(key, "chal-1", "123456")
	tests := []struct {
		name       string
		key        []byte
		chal, code string
		want       bool
	}{
		{"right", key, "chal-1", "123456", true},
		{"wrong code", key, "chal-1", "123457", false},
		{"other challenge", key, "chal-2", "123456", false},
		{"other key", []byte("another key of 32 bytes........."), "chal-1", "123456", false},
		{"boundary shift", key, "chal-11", "23456", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckSMSCode(tt.key, tt.chal, tt.code, h); got != tt.want {
				t.Fatalf("CheckSMSCode = %v", got)
			}
		})
	}
	if CheckSMSCode(key, "chal-1", "123456", h[:10]) {
		t.Fatal("truncated hash accepted")
	}
}

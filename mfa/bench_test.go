package mfa

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The verify benchmarks compare like with like: SHA1, 6 digits, skew ±1,
// the code of the current step, same secret and time. pquerna returns at
// the first match (the current step is tried first, so it computes one
// HMAC); Verify always computes all three steps, in constant time.

var benchNow = time.Unix(1_700_000_000, 0)

func BenchmarkVerify(b *testing.B) {
	code := TOTP(rfcSeed20, benchNow, Params{})
	opts := VerifyOpts{Now: benchNow, Skew: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(rfcSeed20, code, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPquernaValidateCustom(b *testing.B) {
	secret := EncodeSecret(rfcSeed20)
	code := TOTP(rfcSeed20, benchNow, Params{})
	opts := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	b.ReportAllocs()
	for b.Loop() {
		ok, err := totp.ValidateCustom(code, secret, benchNow, opts)
		if err != nil || !ok {
			b.Fatal("pquerna rejected the code")
		}
	}
}

// BenchmarkVerifyWrongCode is the cost of a failed attempt (the same for
// both libraries' worst case: every step computed).
func BenchmarkVerifyWrongCode(b *testing.B) {
	code := TOTP(rfcSeed20, benchNow.Add(-time.Hour), Params{})
	opts := VerifyOpts{Now: benchNow, Skew: 1}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Verify(rfcSeed20, code, opts)
	}
}

func BenchmarkPquernaValidateCustomWrongCode(b *testing.B) {
	secret := EncodeSecret(rfcSeed20)
	code := TOTP(rfcSeed20, benchNow.Add(-time.Hour), Params{})
	opts := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = totp.ValidateCustom(code, secret, benchNow, opts)
	}
}

func BenchmarkHOTP(b *testing.B) {
	b.ReportAllocs()
	var c uint64
	for b.Loop() {
		_ = HOTP(rfcSeed20, c, Params{})
		c++
	}
}

func BenchmarkPquernaHOTP(b *testing.B) {
	secret := EncodeSecret(rfcSeed20)
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	b.ReportAllocs()
	var c uint64
	for b.Loop() {
		_, _ = hotp.GenerateCodeCustom(secret, c, opts)
		c++
	}
}

func BenchmarkVerifyConsecutive(b *testing.B) {
	p := Params{}
	cur := StepAt(benchNow, p)
	c1, c2 := HOTP(rfcSeed20, uint64(cur-1), p), HOTP(rfcSeed20, uint64(cur), p)
	opts := VerifyOpts{Now: benchNow}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyConsecutive(rfcSeed20, c1, c2, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCostRatio measures Verify against pquerna's ValidateCustom
// in interleaved rounds and reports the ratio of the fastest round of each,
// which is robust on a loaded machine (make bench). b.N is not used: one
// measurement is 30 rounds of 20,000 calls each side.
func BenchmarkVerifyCostRatio(b *testing.B) {
	code := TOTP(rfcSeed20, benchNow, Params{})
	secret := EncodeSecret(rfcSeed20)
	vo := VerifyOpts{Now: benchNow, Skew: 1}
	po := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	const n = 20000
	best := func(cur, d time.Duration) time.Duration {
		if cur == 0 || d < cur {
			return d
		}
		return cur
	}
	var ours, theirs time.Duration
	for range 30 {
		start := time.Now()
		for range n {
			_, _ = Verify(rfcSeed20, code, vo)
		}
		ours = best(ours, time.Since(start))
		start = time.Now()
		for range n {
			_, _ = totp.ValidateCustom(code, secret, benchNow, po)
		}
		theirs = best(theirs, time.Since(start))
	}
	ratio := float64(ours) / float64(theirs)
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(ours/n), "verify-ns")
	b.ReportMetric(float64(theirs/n), "pquerna-ns")
	if ratio > 1.2 {
		b.Errorf("Verify costs %.2fx pquerna (target <= 1.2x)", ratio)
	}
}

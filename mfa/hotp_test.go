package mfa

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

var (
	rfcSeed20 = []byte("12345678901234567890")
	rfcSeed32 = []byte("12345678901234567890123456789012")
	rfcSeed64 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestHOTPRFC4226(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for i, w := range want {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := HOTP(rfcSeed20, uint64(i), Params{}); got != w {
				t.Fatalf("HOTP(%d) = %s, want %s", i, got, w)
			}
		})
	}
}

func TestTOTPRFC6238(t *testing.T) {
	tests := []struct {
		unix int64
		alg  Algorithm
		want string
	}{
		{59, SHA1, "94287082"}, {59, SHA256, "46119246"}, {59, SHA512, "90693936"},
		{1111111109, SHA1, "07081804"}, {1111111109, SHA256, "68084774"}, {1111111109, SHA512, "25091201"},
		{1111111111, SHA1, "14050471"}, {1111111111, SHA256, "67062674"}, {1111111111, SHA512, "99943326"},
		{1234567890, SHA1, "89005924"}, {1234567890, SHA256, "91819424"}, {1234567890, SHA512, "93441116"},
		{2000000000, SHA1, "69279037"}, {2000000000, SHA256, "90698825"}, {2000000000, SHA512, "38618901"},
		{20000000000, SHA1, "65353130"}, {20000000000, SHA256, "77737706"}, {20000000000, SHA512, "47863826"},
	}
	seeds := map[Algorithm][]byte{SHA1: rfcSeed20, SHA256: rfcSeed32, SHA512: rfcSeed64}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.alg, tt.unix), func(t *testing.T) {
			p := Params{Algorithm: tt.alg, Digits: 8}
			now := time.Unix(tt.unix, 0)
			if got := TOTP(seeds[tt.alg], now, p); got != tt.want {
				t.Fatalf("TOTP = %s, want %s", got, tt.want)
			}
			step, err := Verify(seeds[tt.alg], tt.want, VerifyOpts{Params: p, Now: now, Skew: NoSkew})
			if err != nil || step != tt.unix/30 {
				t.Fatalf("Verify = %d, %v; want step %d", step, err, tt.unix/30)
			}
		})
	}
}

// refHOTP is HOTP written plainly over crypto/hmac, to cross-check the
// allocation-free engine on keys of every length (including longer than a
// hash block).
func refHOTP(key []byte, counter uint64, alg Algorithm, digits int) string {
	var h func() hash.Hash
	switch alg {
	case SHA256:
		h = sha256.New
	case SHA512:
		h = sha512.New
	default:
		h = sha1.New
	}
	m := hmac.New(h, key)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	s := m.Sum(nil)
	off := s[len(s)-1] & 15
	v := binary.BigEndian.Uint32(s[off:]) & 0x7fffffff
	return fmt.Sprintf("%0*d", digits, v%pow10[digits])
}

func TestHOTPMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		for _, n := range []int{1, 16, 20, 63, 64, 65, 127, 128, 129, 300} {
			key := make([]byte, n)
			for i := range key {
				key[i] = byte(r.Uint32())
			}
			for _, d := range []int{6, 8} {
				c := r.Uint64()
				if got, want := HOTP(key, c, Params{Algorithm: alg, Digits: d}), refHOTP(key, c, alg, d); got != want {
					t.Errorf("%s key %d digits %d: got %s want %s", alg, n, d, got, want)
				}
			}
		}
	}
}

func TestHOTPMatchesPquerna(t *testing.T) {
	sec := EncodeSecret(rfcSeed20)
	for c := uint64(0); c < 50; c++ {
		want, err := hotp.GenerateCodeCustom(sec, c, hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		if got := HOTP(rfcSeed20, c, Params{}); got != want {
			t.Fatalf("counter %d: got %s want %s", c, got, want)
		}
	}
}

func TestHOTPInvalidParams(t *testing.T) {
	if got := HOTP(rfcSeed20, 0, Params{Digits: 7}); got != "" {
		t.Fatalf("got %q", got)
	}
	if got := TOTP(rfcSeed20, time.Unix(-100, 0), Params{}); got != "" {
		t.Fatalf("before epoch: got %q", got)
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		p  Params
		ok bool
	}{
		{Params{}, true},
		{Params{Algorithm: SHA512, Digits: 8, Period: time.Minute}, true},
		{Params{Digits: 7}, false},
		{Params{Period: 45 * time.Second}, false},
		{Params{Algorithm: 7}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.p), func(t *testing.T) {
			err := tt.p.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidParams)) {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
	for _, s := range []string{"SHA1", "sha256", "HMAC-SHA512", "SHA-256"} {
		if _, err := ParseAlgorithm(s); err != nil {
			t.Errorf("ParseAlgorithm(%q): %v", s, err)
		}
	}
	if _, err := ParseAlgorithm("MD5"); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("MD5: %v", err)
	}
}

var testNow = time.Unix(1_700_000_000, 0) // step 56666666, 20s into it

func codeAt(secret []byte, step int64, p Params) string {
	return HOTP(secret, uint64(step), p)
}

func TestVerifyWindow(t *testing.T) {
	p := Params{}
	cur := StepAt(testNow, p)
	tests := []struct {
		name  string
		step  int64
		opts  VerifyOpts
		match bool
	}{
		{"centre", cur, VerifyOpts{}, true},
		{"previous", cur - 1, VerifyOpts{}, true},
		{"next", cur + 1, VerifyOpts{}, true},
		{"two back", cur - 2, VerifyOpts{}, false},
		{"two ahead", cur + 2, VerifyOpts{}, false},
		{"no skew centre", cur, VerifyOpts{Skew: NoSkew}, true},
		{"no skew previous", cur - 1, VerifyOpts{Skew: NoSkew}, false},
		{"skew 2 edge", cur - 2, VerifyOpts{Skew: 2}, true},
		{"skew 2 beyond", cur + 3, VerifyOpts{Skew: 2}, false},
		{"drift centre", cur + 5, VerifyOpts{Drift: 5}, true},
		{"drift low edge", cur + 4, VerifyOpts{Drift: 5}, true},
		{"drift high edge", cur + 6, VerifyOpts{Drift: 5}, true},
		{"drift beyond", cur + 7, VerifyOpts{Drift: 5}, false},
		{"drift leaves now", cur, VerifyOpts{Drift: 5}, false},
		{"negative drift", cur - 9, VerifyOpts{Drift: -8}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Params, tt.opts.Now = p, testNow
			step, err := Verify(rfcSeed20, codeAt(rfcSeed20, tt.step, p), tt.opts)
			if tt.match {
				if err != nil || step != tt.step {
					t.Fatalf("Verify = %d, %v; want step %d", step, err, tt.step)
				}
				return
			}
			if !errors.Is(err, ErrInvalidCode) || step != 0 {
				t.Fatalf("Verify = %d, %v; want ErrInvalidCode", step, err)
			}
		})
	}
}

func TestVerifyReturnsLatestOfSeveralMatches(t *testing.T) {
	// This secret's codes at cur-1 and cur+1 are equal (found by search).
	p := Params{}
	cur := StepAt(testNow, p)
	sec := make([]byte, 20)
	copy(sec, "collision-seed-")
	binary.BigEndian.PutUint32(sec[16:], 2410458)
	code := codeAt(sec, cur-1, p)
	if code != codeAt(sec, cur+1, p) {
		t.Fatal("fixture secret does not collide")
	}
	step, err := Verify(sec, code, VerifyOpts{Now: testNow})
	if err != nil || step != cur+1 {
		t.Fatalf("Verify = %d, %v; want the latest step %d", step, err, cur+1)
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, code := range []string{"", "12345", "1234567", "12345a", " 123456", "123 45", "１２３４５６", "-12345"} {
		t.Run(code, func(t *testing.T) {
			_, err := Verify(rfcSeed20, code, VerifyOpts{Now: testNow})
			if !errors.Is(err, ErrMalformedCode) || !errors.Is(err, ErrInvalidCode) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// An 8-digit device refuses 6 digits.
	if _, err := Verify(rfcSeed20, "123456", VerifyOpts{Params: Params{Digits: 8}}); !errors.Is(err, ErrMalformedCode) {
		t.Fatalf("err = %v", err)
	}
}

func TestVerifyBadOptions(t *testing.T) {
	code := TOTP(rfcSeed20, testNow, Params{})
	for name, o := range map[string]VerifyOpts{
		"skew too large": {Skew: MaxSkew + 1},
		"skew negative":  {Skew: -2},
		"bad digits":     {Params: Params{Digits: 9}},
		"huge drift":     {Drift: 1 << 62},
	} {
		t.Run(name, func(t *testing.T) {
			o.Now = testNow
			if _, err := Verify(rfcSeed20, code, o); !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if _, err := Verify(rfcSeed20[:15], code, VerifyOpts{Now: testNow}); !errors.Is(err, ErrInvalidSecret) {
		t.Fatalf("short secret: %v", err)
	}
}

func TestVerifyConsecutive(t *testing.T) {
	p := Params{}
	cur := StepAt(testNow, p)
	tests := []struct {
		name   string
		s1, s2 int64
		opts   VerifyOpts
		want   int64 // 0: fail
	}{
		{"previous and current", cur - 1, cur, VerifyOpts{}, cur},
		{"current and next", cur, cur + 1, VerifyOpts{}, cur + 1},
		// Submitted just after code2's step ended: code2 is still in the window.
		{"code2 at lower edge", cur - 2, cur - 1, VerifyOpts{}, cur - 1},
		{"code2 below window", cur - 3, cur - 2, VerifyOpts{}, 0},
		{"code2 above window", cur + 1, cur + 2, VerifyOpts{}, 0},
		{"same step twice", cur, cur, VerifyOpts{}, 0},
		{"reversed", cur, cur - 1, VerifyOpts{}, 0},
		{"gap", cur - 1, cur + 1, VerifyOpts{}, 0},
		{"no skew", cur - 1, cur, VerifyOpts{Skew: NoSkew}, cur},
		{"no skew next", cur, cur + 1, VerifyOpts{Skew: NoSkew}, 0},
		{"with drift", cur + 20, cur + 21, VerifyOpts{Drift: 20}, cur + 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Params, tt.opts.Now = p, testNow
			c1, c2 := codeAt(rfcSeed20, tt.s1, p), codeAt(rfcSeed20, tt.s2, p)
			step, err := VerifyConsecutive(rfcSeed20, c1, c2, tt.opts)
			if tt.want == 0 {
				if c1 == c2 && tt.s1 != tt.s2 {
					t.Fatalf("test data: the codes of steps %d and %d collide; pick other steps", tt.s1, tt.s2)
				}
				if !errors.Is(err, ErrInvalidCode) {
					t.Fatalf("VerifyConsecutive = %d, %v; want ErrInvalidCode", step, err)
				}
				return
			}
			if err != nil || step != tt.want {
				t.Fatalf("VerifyConsecutive = %d, %v; want %d", step, err, tt.want)
			}
		})
	}
	if _, err := VerifyConsecutive(rfcSeed20, "12345", "123456", VerifyOpts{}); !errors.Is(err, ErrMalformedCode) {
		t.Fatalf("malformed: %v", err)
	}
}

func TestResync(t *testing.T) {
	p := Params{Period: time.Minute, Digits: 6}
	cur := StepAt(testNow, p)
	tests := []struct {
		name      string
		cardDrift int64 // card's clock minus ours, in steps
		opts      ResyncOpts
		ok        bool
	}{
		{"no drift", 0, ResyncOpts{}, true},
		{"card ahead 7", 7, ResyncOpts{}, true},
		{"card behind 9", -9, ResyncOpts{}, true},
		{"card ahead 10 (edge: s+1 = cur+10 means s = cur+9)", 10, ResyncOpts{}, true},
		{"card ahead 11: s = cur+10 is the edge", 11, ResyncOpts{}, true},
		{"card ahead 12: out of window", 12, ResyncOpts{}, false},
		{"card behind 10: s = cur-11 out of window", -10, ResyncOpts{}, false},
		{"wider window", 40, ResyncOpts{Window: 50}, true},
		{"centred on current drift", 30, ResyncOpts{CurrentDrift: 25}, true},
		{"centred elsewhere", 30, ResyncOpts{CurrentDrift: -25}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Params, tt.opts.Now = p, testNow
			// The card shows code1 at its previous step and code2 at its current one.
			s2 := cur + tt.cardDrift
			c1, c2 := codeAt(rfcSeed20, s2-1, p), codeAt(rfcSeed20, s2, p)
			drift, step, err := Resync(rfcSeed20, c1, c2, tt.opts)
			if !tt.ok {
				if err != ErrResyncFailed {
					t.Fatalf("Resync = %d, %d, %v; want ErrResyncFailed", drift, step, err)
				}
				return
			}
			if err != nil || drift != tt.cardDrift || step != s2 {
				t.Fatalf("Resync = %d, %d, %v; want %d, %d", drift, step, err, tt.cardDrift, s2)
			}
			// The measured drift makes the card's codes verify.
			if _, err := Verify(rfcSeed20, codeAt(rfcSeed20, s2+1, p), VerifyOpts{Params: p, Now: testNow, Drift: drift}); err != nil {
				t.Fatalf("Verify with drift: %v", err)
			}
		})
	}
}

func TestResyncFailsGenerically(t *testing.T) {
	p := Params{}
	cur := StepAt(testNow, p)
	good1, good2 := codeAt(rfcSeed20, cur-1, p), codeAt(rfcSeed20, cur, p)
	wrong := func(c string) string {
		b := []byte(c)
		b[0] = '0' + (b[0]-'0'+1)%10
		return string(b)
	}
	cases := map[string][2]string{
		"first right":  {good1, wrong(good2)},
		"second right": {wrong(good1), good2},
		"both wrong":   {wrong(good1), wrong(good2)},
		"malformed":    {"abc", good2},
		"swapped":      {good2, good1},
	}
	var msgs []string
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := Resync(rfcSeed20, c[0], c[1], ResyncOpts{Now: testNow})
			if err != ErrResyncFailed {
				t.Fatalf("err = %v, want exactly ErrResyncFailed", err)
			}
			msgs = append(msgs, err.Error())
		})
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Fatalf("messages differ: %q", msgs)
		}
	}
	if _, _, err := Resync(rfcSeed20, good1, good2, ResyncOpts{Now: testNow, Window: MaxResyncWindow + 1}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("window: %v", err)
	}
}

func TestVerifyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes escape analysis; make test runs this test again without -race")
	}
	code := TOTP(rfcSeed20, testNow, Params{})
	for _, alg := range []Algorithm{SHA1, SHA256, SHA512} {
		o := VerifyOpts{Params: Params{Algorithm: alg}, Now: testNow}
		code := TOTP(rfcSeed64, testNow, o.Params)
		if n := testing.AllocsPerRun(100, func() { _, _ = Verify(rfcSeed64, code, o) }); n != 0 {
			t.Errorf("%s: %v allocs per Verify", alg, n)
		}
		c1, c2 := code, TOTP(rfcSeed64, testNow.Add(30*time.Second), o.Params)
		if n := testing.AllocsPerRun(100, func() { _, _ = VerifyConsecutive(rfcSeed64, c1, c2, o) }); n != 0 {
			t.Errorf("%s: %v allocs per VerifyConsecutive", alg, n)
		}
	}
	_ = code
}

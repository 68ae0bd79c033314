package mfa

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding"
	"encoding/binary"
	"time"
)

const maxBlockSize = sha512.BlockSize // 128

var pow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// hmacKey computes HMAC(key, counter) for many counters without allocating:
// the padded key blocks live in fixed arrays, and each MAC is two one-shot
// hashes, H((K^opad) || H((K^ipad) || counter)), per RFC 2104.
type hmacKey struct {
	alg   Algorithm
	block int
	size  int
	in    [maxBlockSize + 8]byte           // K^ipad || counter
	out   [maxBlockSize + sha512.Size]byte // K^opad || inner digest
}

func (k *hmacKey) init(alg Algorithm, key []byte) {
	k.alg = alg
	switch alg {
	case SHA256:
		k.block, k.size = sha256.BlockSize, sha256.Size
	case SHA512:
		k.block, k.size = sha512.BlockSize, sha512.Size
	default:
		k.block, k.size = sha1.BlockSize, sha1.Size
	}
	var hashed [sha512.Size]byte
	if len(key) > k.block {
		key = k.sum(key, &hashed)
	}
	clear(k.in[:k.block])
	clear(k.out[:k.block])
	copy(k.in[:], key)
	copy(k.out[:], key)
	for i := range k.block {
		k.in[i] ^= 0x36
		k.out[i] ^= 0x5c
	}
	clear(hashed[:])
}

func (k *hmacKey) sum(msg []byte, dst *[sha512.Size]byte) []byte {
	switch k.alg {
	case SHA256:
		s := sha256.Sum256(msg)
		copy(dst[:], s[:])
	case SHA512:
		s := sha512.Sum512(msg)
		copy(dst[:], s[:])
	default:
		s := sha1.Sum(msg)
		copy(dst[:], s[:])
	}
	return dst[:k.size]
}

// code returns the HOTP value of counter (RFC 4226 section 5.3) as an integer.
func (k *hmacKey) code(counter uint64, digits int) uint32 {
	var d [sha512.Size]byte
	binary.BigEndian.PutUint64(k.in[k.block:], counter)
	inner := k.sum(k.in[:k.block+8], &d)
	copy(k.out[k.block:], inner)
	v := truncate(k.sum(k.out[:k.block+k.size], &d), digits)
	clear(d[:])
	return v
}

func (k *hmacKey) wipe() {
	clear(k.in[:])
	clear(k.out[:])
}

func truncate(h []byte, digits int) uint32 {
	off := h[len(h)-1] & 0x0f
	return (binary.BigEndian.Uint32(h[off:off+4]) & 0x7fffffff) % pow10[digits]
}

// scan calls visit with the code of every step in [lo, hi], in order; steps
// before the epoch are skipped. The work depends on the window only, never on
// the codes.
func scan(alg Algorithm, secret []byte, digits int, lo, hi int64, visit func(step int64, code uint32)) {
	lo = max(lo, 0)
	if alg == SHA1 && scanSHA1(secret, digits, lo, hi, visit) {
		return
	}
	var k hmacKey
	k.init(alg, secret)
	for s := lo; s <= hi; s++ {
		visit(s, k.code(uint64(s), digits))
	}
	k.wipe()
}

// scanSHA1 is scan for HMAC-SHA1, the algorithm of nearly every device. It
// hashes the padded key blocks once and restores the saved hash states for
// each step (RFC 2104 section 4, FIPS 198-1 section 6), so a step costs two
// SHA-1 blocks instead of four. Everything stays on the stack: sha1.New is
// inlined and its methods devirtualized. It reports false, doing nothing, if
// the hash cannot save its state (a FIPS/BoringCrypto build).
func scanSHA1(secret []byte, digits int, lo, hi int64, visit func(step int64, code uint32)) bool {
	var pad [sha1.BlockSize]byte
	var hashed [sha1.Size]byte
	key := secret
	if len(key) > sha1.BlockSize {
		hashed = sha1.Sum(key)
		key = hashed[:]
	}
	copy(pad[:], key)
	for i := range pad {
		pad[i] ^= 0x36
	}
	inner := sha1.New()
	inner.Write(pad[:])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	outer := sha1.New()
	outer.Write(pad[:])
	clear(pad[:])
	clear(hashed[:])
	ia, ok1 := inner.(encoding.BinaryAppender)
	iu, ok2 := inner.(encoding.BinaryUnmarshaler)
	oa, ok3 := outer.(encoding.BinaryAppender)
	ou, ok4 := outer.(encoding.BinaryUnmarshaler)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return false
	}
	var ibuf, obuf [128]byte
	is, err1 := ia.AppendBinary(ibuf[:0])
	os, err2 := oa.AppendBinary(obuf[:0])
	if err1 != nil || err2 != nil {
		return false
	}
	var ctr [8]byte
	var sum [sha1.Size]byte
	for s := lo; s <= hi; s++ {
		if iu.UnmarshalBinary(is) != nil || ou.UnmarshalBinary(os) != nil {
			panic("mfa: sha1 state restore failed")
		}
		binary.BigEndian.PutUint64(ctr[:], uint64(s))
		inner.Write(ctr[:])
		d := inner.Sum(sum[:0])
		outer.Write(d)
		d = outer.Sum(sum[:0])
		visit(s, truncate(d, digits))
	}
	clear(ibuf[:])
	clear(obuf[:])
	clear(sum[:])
	inner.Reset()
	outer.Reset()
	return true
}

// HOTP returns the RFC 4226 code of secret at counter, zero-padded to
// p.Digits. It returns "" when p is invalid (see Params.Validate).
func HOTP(secret []byte, counter uint64, p Params) string {
	p, err := p.resolve()
	if err != nil {
		return ""
	}
	var k hmacKey
	k.init(p.Algorithm, secret)
	v := k.code(counter, p.Digits)
	k.wipe()
	return formatCode(v, p.Digits)
}

// TOTP returns the RFC 6238 code of secret at time t (T0 = Unix epoch). It
// returns "" when p is invalid or t is before the epoch.
func TOTP(secret []byte, t time.Time, p Params) string {
	p, err := p.resolve()
	if err != nil {
		return ""
	}
	s := StepAt(t, p)
	if s < 0 {
		return ""
	}
	return HOTP(secret, uint64(s), p)
}

// StepAt returns the TOTP time step of t: floor(unix seconds / period).
func StepAt(t time.Time, p Params) int64 {
	period := int64(p.WithDefaults().Period / time.Second)
	if period <= 0 {
		period = int64(DefaultPeriod / time.Second)
	}
	u := t.Unix()
	s := u / period
	if u%period < 0 {
		s--
	}
	return s
}

func formatCode(v uint32, digits int) string {
	var b [8]byte
	for i := digits - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[:digits])
}

// parseCode reads exactly digits ASCII digits.
func parseCode(s string, digits int) (uint32, bool) {
	if len(s) != digits {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint32(c-'0')
	}
	return v, true
}

// ctEq reports a == b as 1 or 0 without branching on the values.
func ctEq(a, b uint32) int { return subtle.ConstantTimeEq(int32(a), int32(b)) }

// ctSelect returns a if bit == 1 and b if bit == 0, without branching.
func ctSelect(bit int, a, b int64) int64 {
	mask := -int64(bit)
	return (a & mask) | (b &^ mask)
}

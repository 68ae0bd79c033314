package mfa

import (
	"fmt"
	"time"
)

// Window defaults and limits.
const (
	// DefaultSkew is the number of steps accepted either side of the centre
	// when VerifyOpts.Skew is 0.
	DefaultSkew = 1
	// NoSkew as VerifyOpts.Skew accepts the centre step only.
	NoSkew = -1
	// MaxSkew is the largest VerifyOpts.Skew accepted.
	MaxSkew = 10
	// DefaultResyncWindow is ResyncOpts.Window when it is 0.
	DefaultResyncWindow = 10
	// MaxResyncWindow is the largest ResyncOpts.Window accepted.
	MaxResyncWindow = 1000
	// MinSecretLen is the shortest secret accepted for verification, in bytes
	// (RFC 4226 R6: at least 128 bits).
	MinSecretLen = 16
	// MaxSecretLen is the longest secret accepted, in bytes.
	MaxSecretLen = 128
	// maxDrift bounds drift values so step arithmetic cannot overflow.
	maxDrift = 1 << 40
)

// VerifyOpts configures Verify and VerifyConsecutive. The zero value means
// default Params, the current time, ±1 step and no drift.
type VerifyOpts struct {
	Params Params
	// Now is the verification time; zero means time.Now().
	Now time.Time
	// Skew is the number of steps accepted on either side of the centre:
	// 0 means DefaultSkew (±1), NoSkew (-1) means exactly the centre step,
	// 1..MaxSkew as given.
	Skew int
	// Drift moves the centre of the window by this many steps, for a
	// hardware card whose clock was measured by Resync.
	Drift int64
}

func (o VerifyOpts) window() (p Params, lo, hi int64, err error) {
	p, err = o.Params.resolve()
	if err != nil {
		return p, 0, 0, err
	}
	skew := int64(o.Skew)
	switch {
	case o.Skew == 0:
		skew = DefaultSkew
	case o.Skew == NoSkew:
		skew = 0
	case o.Skew < 0 || o.Skew > MaxSkew:
		return p, 0, 0, fmt.Errorf("%w: skew out of range", ErrInvalidParams)
	}
	if o.Drift > maxDrift || o.Drift < -maxDrift {
		return p, 0, 0, fmt.Errorf("%w: drift out of range", ErrInvalidParams)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	c := StepAt(now, p) + o.Drift
	return p, c - skew, c + skew, nil
}

func checkSecret(secret []byte) error {
	if len(secret) < MinSecretLen || len(secret) > MaxSecretLen {
		return ErrInvalidSecret
	}
	return nil
}

// Verify checks a TOTP code and returns the time step it matched, which the
// caller must consume (StepStore.AdvanceStep) so the code is accepted once.
//
// A code that is not exactly Params.Digits ASCII digits is rejected with
// ErrMalformedCode before any cryptography. Every step of the window is
// computed and compared in constant time, so the time taken does not tell
// which step matched. If the code matches several steps the latest one is
// returned: consuming it blocks every other step the code matches.
//
// Verify returns ErrInvalidCode when no step matches, ErrInvalidParams for
// unsupported options and ErrInvalidSecret for a secret shorter than
// MinSecretLen or longer than MaxSecretLen.
func Verify(secret []byte, code string, opts VerifyOpts) (step int64, err error) {
	p, lo, hi, err := opts.window()
	if err != nil {
		return 0, err
	}
	c, ok := parseCode(code, p.Digits)
	if !ok {
		return 0, ErrMalformedCode
	}
	if err := checkSecret(secret); err != nil {
		return 0, err
	}
	var matched int64
	found := 0
	scan(p.Algorithm, secret, p.Digits, lo, hi, func(s int64, v uint32) {
		eq := ctEq(v, c)
		matched = ctSelect(eq, s, matched)
		found |= eq
	})
	if found == 0 {
		return 0, ErrInvalidCode
	}
	return matched, nil
}

// consecutive scans s in [lo, hi] for code1 at s and code2 at s+1 and returns
// the latest s+1 that matches. It examines every step.
func consecutive(alg Algorithm, secret []byte, digits int, c1, c2 uint32, lo, hi int64) (int64, bool) {
	var matched int64
	found, prev := 0, 0
	scan(alg, secret, digits, lo, hi+1, func(t int64, v uint32) {
		pair := prev & ctEq(v, c2)
		matched = ctSelect(pair, t, matched)
		found |= pair
		prev = ctEq(v, c1)
	})
	return matched, found == 1
}

// VerifyConsecutive checks two codes read one after the other from the same
// device, as binding requires: code2, the later one, at a step s+1 within the
// window and code1 at s, just before it. (A user reads code1, waits for the
// next, types code2 and submits, often after its step has ended: anchoring
// the window on code1 would refuse that.) It returns s+1, the last step used,
// which the caller records as the device's last used step so neither code
// can be replayed.
//
// It returns ErrMalformedCode if either code is malformed, ErrInvalidCode if
// no pair matches, ErrInvalidParams and ErrInvalidSecret as Verify does.
func VerifyConsecutive(secret []byte, code1, code2 string, opts VerifyOpts) (step int64, err error) {
	p, lo, hi, err := opts.window()
	if err != nil {
		return 0, err
	}
	c1, ok1 := parseCode(code1, p.Digits)
	c2, ok2 := parseCode(code2, p.Digits)
	if !ok1 || !ok2 {
		return 0, ErrMalformedCode
	}
	if err := checkSecret(secret); err != nil {
		return 0, err
	}
	// consecutive takes the window of code1.
	s, ok := consecutive(p.Algorithm, secret, p.Digits, c1, c2, lo-1, hi-1)
	if !ok {
		return 0, ErrInvalidCode
	}
	return s, nil
}

// ResyncOpts configures Resync. The zero value means default Params, the
// current time, a window of DefaultResyncWindow steps and no current drift.
type ResyncOpts struct {
	Params Params
	// Now is the resync time; zero means time.Now().
	Now time.Time
	// Window is the number of steps searched on either side of the centre:
	// 0 means DefaultResyncWindow, at most MaxResyncWindow.
	Window int
	// CurrentDrift is the card's recorded drift in steps; the search is
	// centred on it.
	CurrentDrift int64
}

// Resync measures a hardware card's clock drift from two consecutive codes:
// it finds s within ±Window of the current step plus CurrentDrift with code1
// at s and code2 at s+1, and returns the new drift (s+1 minus the current
// step) and the step s+1, which the caller must consume like a verified step.
//
// Every step of the window is examined. Any code failure, including a
// malformed code, returns the single error ErrResyncFailed, which never tells
// which code was right. Unsupported options return ErrInvalidParams and a bad
// secret ErrInvalidSecret.
func Resync(secret []byte, code1, code2 string, opts ResyncOpts) (newDrift, step int64, err error) {
	p, err := opts.Params.resolve()
	if err != nil {
		return 0, 0, err
	}
	w := int64(opts.Window)
	switch {
	case w == 0:
		w = DefaultResyncWindow
	case w < 0 || w > MaxResyncWindow:
		return 0, 0, fmt.Errorf("%w: resync window out of range", ErrInvalidParams)
	}
	if opts.CurrentDrift > maxDrift || opts.CurrentDrift < -maxDrift {
		return 0, 0, fmt.Errorf("%w: drift out of range", ErrInvalidParams)
	}
	if err := checkSecret(secret); err != nil {
		return 0, 0, err
	}
	c1, ok1 := parseCode(code1, p.Digits)
	c2, ok2 := parseCode(code2, p.Digits)
	if !ok1 || !ok2 {
		return 0, 0, ErrResyncFailed
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	cur := StepAt(now, p)
	centre := cur + opts.CurrentDrift
	s, ok := consecutive(p.Algorithm, secret, p.Digits, c1, c2, centre-w, centre+w)
	if !ok {
		return 0, 0, ErrResyncFailed
	}
	return s - cur, s, nil
}

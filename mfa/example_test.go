package mfa_test

import (
	"fmt"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
)

func Example() {
	secret := []byte("12345678901234567890") // mfa.NewSecret(nil) in production
	now := time.Unix(1_700_000_000, 0)

	// Binding: the user scans the URI, then types two consecutive codes.
	fmt.Println(mfa.KeyURI("Example Cloud", "alice@example.com", secret, mfa.Params{}))
	code1 := mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{})
	code2 := mfa.TOTP(secret, now, mfa.Params{})
	last, err := mfa.VerifyConsecutive(secret, code1, code2, mfa.VerifyOpts{Now: now})
	fmt.Println(last, err) // store last as the device's last used step

	// Login: the matched step must be newer than the stored one.
	step, err := mfa.Verify(secret, code2, mfa.VerifyOpts{Now: now})
	fmt.Println(step, err, step > last)
	// Output:
	// otpauth://totp/Example%20Cloud:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Cloud&algorithm=SHA1&digits=6&period=30
	// 56666666 <nil>
	// 56666666 <nil> false
}

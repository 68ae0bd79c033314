package activities_test

import (
	"testing"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestBindingSMSAcrossRotation: a code sent just before a key rotation
// still checks after it (new key first, old key second), and one whose key
// left the ring does not.
func TestBindingSMSAcrossRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		c := ctx(t)
		newer, err := mfa.GenerateKeyring()
		must(t, err)
		rotated, err := mfa.ParseKeyring(newer.Encode() + "," + f.keys.Encode())
		must(t, err)
		for i, tc := range []struct {
			keys *mfa.Keyring
			ok   bool
		}{{rotated, true}, {newer, false}} {
			acct, phone := []string{"acct-r1", "acct-r2"}[i], []string{"+8613800000011", "+8613800000012"}[i]
			f.account(t, acct, phone, "")
			f.a.Keys = f.keys
			sent, err := f.a.SendBindingSMS(c, workflows.SendBindingSMSInput{AccountID: acct, BindingID: "b-" + acct})
			must(t, err)
			f.a.Keys = tc.keys
			_, err = f.a.CheckBindingSMS(c, workflows.CheckBindingSMSInput{AccountID: acct, ChallengeID: sent.ChallengeID, Code: f.lastSMSCode(t, phone)})
			if tc.ok {
				must(t, err)
			} else {
				wantType(t, err, workflows.ErrTypeInvalidCode)
			}
		}
	})
}

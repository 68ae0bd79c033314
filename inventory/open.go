package inventory

import (
	"context"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// OpenSecret opens the sealed secret of row id in table and, when it is
// sealed with an older key, re-seals it with the current key (online
// rotation on use). A failed re-seal is not an error: the secret opened, and
// `mfaflow keys rotate` or the next use will try again. It returns
// mfa.ErrUnknownKey or mfa.ErrOpen when the secret cannot be opened.
func OpenSecret(ctx context.Context, st store.SealedStore, keys *mfa.Keyring, table store.SealedTable, id string, s mfa.Sealed) ([]byte, error) {
	aad := mfa.AAD(string(table), id)
	plain, err := keys.Open(s, aad)
	if err != nil {
		return nil, err
	}
	if keys.NeedsReseal(s) {
		if ns, err := keys.Seal(plain, aad); err == nil {
			// A conflict means another replica re-sealed it first; any
			// other failure is retried on the next use.
			_ = st.Reseal(ctx, table, id, s.KeyID, ns)
		}
	}
	return plain, nil
}

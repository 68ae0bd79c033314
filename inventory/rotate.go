package inventory

import (
	"context"
	"errors"
	"fmt"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// RotateResult counts what Rotate did per table.
type RotateResult struct {
	Table    store.SealedTable `json:"table"`
	Scanned  int               `json:"scanned"`
	Resealed int               `json:"resealed"`
	Skipped  int               `json:"skipped"` // changed meanwhile by someone else (already re-sealed on use)
}

// Rotate re-seals, in batches, every secret not sealed with the key ring's
// current key. It runs online: each row is replaced by compare-and-set on its
// old key id, so a row re-sealed meanwhile (for example when it was used) is
// skipped. It returns the store's errors, or mfa.ErrUnknownKey / mfa.ErrOpen
// for a row the ring cannot open (the row is left alone and counted in the
// error; rotation stops so the operator can supply the missing key).
func Rotate(ctx context.Context, st store.SealedStore, keys *mfa.Keyring, batch int) ([]RotateResult, error) {
	var out []RotateResult
	for _, table := range []store.SealedTable{store.SealedDevices, store.SealedTokens} {
		res := RotateResult{Table: table}
		after := ""
		for {
			rows, err := st.ListSealed(ctx, table, after, batch)
			if err != nil {
				return append(out, res), err
			}
			if len(rows) == 0 {
				break
			}
			for _, r := range rows {
				res.Scanned++
				after = r.ID
				if !keys.NeedsReseal(r.Sealed) {
					continue
				}
				ns, err := keys.Reseal(r.Sealed, mfa.AAD(string(table), r.ID))
				if err != nil {
					return append(out, res), fmt.Errorf("inventory: %s row %s: %w", table, r.ID, err)
				}
				err = st.Reseal(ctx, table, r.ID, r.Sealed.KeyID, ns)
				switch {
				case err == nil:
					res.Resealed++
				case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
					res.Skipped++
				default:
					return append(out, res), err
				}
			}
		}
		out = append(out, res)
	}
	return out, nil
}

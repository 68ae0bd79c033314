package pgstore

import (
	"context"
	"fmt"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/internal/dbutil"
)

var _ store.KeyUsageStore = (*DB)(nil)

// CountRecoveryCodesByKey implements store.KeyUsageStore.
func (db *DB) CountRecoveryCodesByKey(ctx context.Context) (map[string]int, error) {
	rows, err := db.pool.Query(ctx, dbutil.CountRecoveryCodesByKeySQL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: count recovery codes: %w", classify(err))
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("pgstore: count recovery codes: %w", classify(err))
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: count recovery codes: %w", classify(err))
	}
	return out, nil
}

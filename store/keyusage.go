package store

import "context"

// KeyUsageStore tells `mfaflow keys status` what the store still keeps
// under each key id of the ring besides sealed rows (SealedStore.ListSealed
// counts those).
type KeyUsageStore interface {
	// CountRecoveryCodesByKey returns, per key id, how many unused recovery
	// codes are hashed with a key derived from it (RecoveryCode.KeyID).
	// Used codes are never checked again and are not counted. Key ids
	// with no unused code are absent.
	CountRecoveryCodesByKey(ctx context.Context) (map[string]int, error)
}

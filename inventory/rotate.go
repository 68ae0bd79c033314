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

// StatusStore is what Status reads: sealed rows, recovery codes by key and
// the index of appeals.
type StatusStore interface {
	store.SealedStore
	store.KeyUsageStore
	ListAppeals(ctx context.Context, status, accountID string, limit int) ([]store.Appeal, error)
}

// OpenWorkflow is a running workflow and the ids of the keys that sealed
// its history's payloads (codec.OpenWorkflowKeys).
type OpenWorkflow struct {
	ID string
	// Appeal marks an unbind appeal: its owner-cancel link was sent with
	// the key current when it was filed, and works until it closes.
	Appeal bool
	KeyIDs []string
}

// KeyUse is what still uses one key: a key of the ring, or a key id found
// in use that the ring lacks (InRing false: those rows or workflows cannot
// be opened).
type KeyUse struct {
	KeyID         string                    `json:"key_id"`
	InRing        bool                      `json:"in_ring"`
	Current       bool                      `json:"current"`
	SealedRows    map[store.SealedTable]int `json:"sealed_rows"`
	RecoveryCodes int                       `json:"recovery_codes"`
	// Workflows are the open workflows whose history holds a payload
	// sealed with the key; a worker replaying one needs the key.
	Workflows []string `json:"open_workflows"`
	// CancelLinks are the open appeals whose history holds the key: the
	// owner-cancel link each sent carries the key current then, one of
	// these, and works until the appeal closes.
	CancelLinks []string `json:"cancel_links"`
	// Retirable: nothing above uses the key and it is not the current one.
	Retirable bool     `json:"retirable"`
	Blockers  []string `json:"blockers,omitempty"`
}

// openAppealStatuses are the statuses of appeals that are not closed
// (workflows.AppealCollecting, AppealPending, AppealInReview,
// AppealCoolingDown).
var openAppealStatuses = []string{"collecting_documents", "pending_review", "in_review", "cooling_down"}

// OpenAppealIDs returns the ids of the appeals the store holds open (up to
// 1000 per open status), the workflow ids of their UnbindAppeal runs. It
// returns the store's errors.
func OpenAppealIDs(ctx context.Context, st interface {
	ListAppeals(ctx context.Context, status, accountID string, limit int) ([]store.Appeal, error)
}) ([]string, error) {
	var ids []string
	for _, s := range openAppealStatuses {
		as, err := st.ListAppeals(ctx, s, "", 1000)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if a.ClosedAt.IsZero() {
				ids = append(ids, a.ID)
			}
		}
	}
	return ids, nil
}

// Status reports, for every key of the ring (the current one first) and for
// any key id in use that the ring lacks, what still uses it: sealed rows,
// unused recovery codes, open workflows and owner-cancel links. open lists
// the running workflows with their history's key ids; when Temporal could
// not be read, pass the reason as openErr: then nothing is known of the
// histories, and the store's open appeals keep every key but the current one
// from being retired. It returns the store's errors.
func Status(ctx context.Context, st StatusStore, keys *mfa.Keyring, open []OpenWorkflow, openErr error) ([]KeyUse, error) {
	uses := map[string]*KeyUse{}
	var order []string
	use := func(id string) *KeyUse {
		u, ok := uses[id]
		if !ok {
			u = &KeyUse{KeyID: id, SealedRows: map[store.SealedTable]int{}, Workflows: []string{}, CancelLinks: []string{}}
			uses[id] = u
			order = append(order, id)
		}
		return u
	}
	for i, id := range keys.IDs() {
		u := use(id)
		u.InRing, u.Current = true, i == 0
	}
	for _, table := range []store.SealedTable{store.SealedDevices, store.SealedTokens} {
		for after := ""; ; {
			rows, err := st.ListSealed(ctx, table, after, 1000)
			if err != nil {
				return nil, err
			}
			if len(rows) == 0 {
				break
			}
			for _, r := range rows {
				use(r.Sealed.KeyID).SealedRows[table]++
				after = r.ID
			}
		}
	}
	codes, err := st.CountRecoveryCodesByKey(ctx)
	if err != nil {
		return nil, err
	}
	for id, n := range codes {
		use(id).RecoveryCodes += n
	}
	for _, w := range open {
		for _, id := range w.KeyIDs {
			u := use(id)
			u.Workflows = append(u.Workflows, w.ID)
			if w.Appeal {
				u.CancelLinks = append(u.CancelLinks, w.ID)
			}
		}
	}
	openAppeals := 0
	if openErr != nil {
		ids, err := OpenAppealIDs(ctx, st)
		if err != nil {
			return nil, err
		}
		openAppeals = len(ids)
	}
	out := make([]KeyUse, 0, len(order))
	for _, id := range order {
		u := uses[id]
		var b []string
		if u.Current {
			u.Blockers = []string{"it is the current key"}
			out = append(out, *u)
			continue
		}
		if !u.InRing {
			b = append(b, "it is not in the ring: what it sealed cannot be opened; add it back")
		}
		if n := u.SealedRows[store.SealedDevices] + u.SealedRows[store.SealedTokens]; n > 0 {
			b = append(b, fmt.Sprintf("%d sealed rows: run mfaflow keys rotate", n))
		}
		if u.RecoveryCodes > 0 {
			b = append(b, fmt.Sprintf("%d unused recovery codes are hashed with it: they go when used or replaced", u.RecoveryCodes))
		}
		if len(u.Workflows) > 0 {
			b = append(b, fmt.Sprintf("%d open workflows hold payloads sealed with it: wait until they end", len(u.Workflows)))
		}
		if len(u.CancelLinks) > 0 {
			b = append(b, fmt.Sprintf("%d open appeals may have sent their owner-cancel link with it", len(u.CancelLinks)))
		}
		if openErr != nil && openAppeals > 0 {
			b = append(b, fmt.Sprintf("%d appeals are open and Temporal could not be read (%v): which keys their histories hold is unknown", openAppeals, openErr))
		}
		u.Blockers, u.Retirable = b, len(b) == 0
		out = append(out, *u)
	}
	return out, nil
}

package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// TestStatus: a key id in use that the ring lacks is reported and blocks
// nothing it cannot open silently; open workflows block their keys; an
// older key nothing uses can be retired; without Temporal an open appeal
// blocks every older key.
func TestStatus(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		older, err := mfa.GenerateKeyring()
		if err != nil {
			t.Fatal(err)
		}
		current, err := mfa.GenerateKeyring()
		if err != nil {
			t.Fatal(err)
		}
		keys, err := mfa.ParseKeyring(current.Encode() + "," + older.Encode())
		if err != nil {
			t.Fatal(err)
		}
		ss := st.(inventory.StatusStore)
		if _, err := st.ReplaceRecoveryCodes(ctx, "acc-s", []store.RecoveryCode{{KeyID: "gone", Hash: bytes.Repeat([]byte{1}, 32)}}, false); err != nil {
			t.Fatal(err)
		}
		byID := func(uses []inventory.KeyUse) map[string]inventory.KeyUse {
			m := map[string]inventory.KeyUse{}
			for _, u := range uses {
				m[u.KeyID] = u
			}
			return m
		}
		uses, err := inventory.Status(ctx, ss, keys, []inventory.OpenWorkflow{{ID: "apl_s", Appeal: true, KeyIDs: []string{"lost"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(uses) != 4 || uses[0].KeyID != current.CurrentID() || !uses[0].Current {
			t.Fatalf("keys: %+v, want the current key first, then the older one and the two missing ones", uses)
		}
		u := byID(uses)
		if o := u[older.CurrentID()]; !o.Retirable || o.Current || !o.InRing {
			t.Fatalf("older key nothing uses: %+v", o)
		}
		if g := u["gone"]; g.InRing || g.Retirable || g.RecoveryCodes != 1 {
			t.Fatalf("missing key of recovery codes: %+v", g)
		}
		if l := u["lost"]; l.InRing || l.Retirable || len(l.Workflows) != 1 || len(l.CancelLinks) != 1 {
			t.Fatalf("missing key of a workflow: %+v", l)
		}
		// Temporal not read: an open appeal keeps the older key.
		if _, err := st.CreateAppeal(ctx, store.Appeal{ID: "apl_s", AccountID: "acc-s", ApplicantType: "personal",
			TokenHash: store.TokenHash("s"), Status: "collecting_documents"}); err != nil {
			t.Fatal(err)
		}
		uses, err = inventory.Status(ctx, ss, keys, nil, errors.New("unreachable"))
		if err != nil {
			t.Fatal(err)
		}
		if o := byID(uses)[older.CurrentID()]; o.Retirable || !strings.Contains(strings.Join(o.Blockers, ";"), "1 appeals are open") {
			t.Fatalf("older key with an appeal open and Temporal not read: %+v", o)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// fakeAppeal stands in for UnbindAppeal (registered under its name): it
// stays open until signalled "finish".
func fakeAppeal(ctx workflow.Context, _ string) error {
	workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	return nil
}

// TestKeysStatus runs `keys rotate` and `keys status` on both stores and a
// real Temporal server: after a rotation the old key stays in use while an
// appeal started before it is open and while recovery codes hash with it,
// and can be retired once neither holds. Without Temporal, an open appeal
// in the store keeps the old key.
func TestKeysStatus(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		url := harness.PostgresURL(t)
		db, err := pgstore.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		testKeysStatus(t, map[string]string{"DATABASE_URL": url}, db)
	})
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		db := storetest.OpenSQLite(t, filepath.Join(dir, "mfaflow.db"))
		testKeysStatus(t, map[string]string{"MFAFLOW_DATA_DIR": dir}, db)
	})
}

func testKeysStatus(t *testing.T, env map[string]string, st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	old, _ := mfa.GenerateKeyring()
	fresh, _ := mfa.GenerateKeyring()
	env["MFAFLOW_SECRET_KEYS"] = old.Encode()
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	// Before the rotation: a card sealed, recovery codes hashed and an
	// appeal started, all with the old key.
	s, _ := mfa.NewSecret(nil)
	cards := filepath.Join(t.TempDir(), "cards.csv")
	writeFile(t, cards, "serial,secret,algorithm,digits,period\nKS-0001,"+mfa.EncodeSecret(s)+",SHA1,6,30\n")
	if err := run(ctx, []string{"tokens", "import", cards}, getenv, &out, &out); err != nil {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	codes := func(keyID string) []store.RecoveryCode {
		return []store.RecoveryCode{{KeyID: keyID, Hash: bytes.Repeat([]byte{1}, 32)}, {KeyID: keyID, Hash: bytes.Repeat([]byte{2}, 32)}}
	}
	if _, err := st.ReplaceRecoveryCodes(ctx, "acc-ks", codes(old.CurrentID()), false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAppeal(ctx, store.Appeal{ID: "apl_ks1", AccountID: "acc-ks", ApplicantType: "personal",
		TokenHash: store.TokenHash("ks1"), Status: "pending_review"}); err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, old)
	env["TEMPORAL_ADDRESS"], env["TEMPORAL_NAMESPACE"] = ts.GetFrontendHostPort(), ts.GetDefaultNamespace()
	const queue = "keys-status"
	if _, err := ts.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "apl_ks1", TaskQueue: queue}, appealWorkflowType, "filed"); err != nil {
		t.Fatal(err)
	}

	// The rotation: the new key first, the old one second.
	rotated, err := mfa.ParseKeyring(fresh.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	env["MFAFLOW_SECRET_KEYS"] = rotated.Encode()
	w := sdkworker.New(ts.NewClientWithOptions(codec.ClientOptions(rotated, client.Options{})), queue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(fakeAppeal, workflow.RegisterOptions{Name: appealWorkflowType})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	out.Reset()
	if err := run(ctx, []string{"keys", "rotate"}, getenv, &out, &out); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("keys rotate:\n%s", text)
	if strings.Contains(text, "every secret is sealed") || !strings.Contains(text, `"table":"hardware_tokens","scanned":1,"resealed":1`) ||
		!strings.Contains(text, "key "+old.CurrentID()+"\n") || !strings.Contains(text, "retire:               not yet") ||
		!strings.Contains(text, "open workflows:       1 (apl_ks1)") || !strings.Contains(text, "recovery codes:       2 unused") {
		t.Fatalf("rotate says:\n%s", text)
	}
	for _, k := range []*mfa.Keyring{old, fresh} {
		if _, raw, _ := strings.Cut(k.Encode(), ":"); strings.Contains(text, raw) {
			t.Fatal("the output holds key material")
		}
	}

	status := func() map[string]inventory.KeyUse {
		t.Helper()
		var b bytes.Buffer
		if err := run(ctx, []string{"keys", "status", "-json"}, getenv, &b, &b); err != nil {
			t.Fatalf("status: %v\n%s", err, b.String())
		}
		var uses []inventory.KeyUse
		if err := json.Unmarshal(b.Bytes(), &uses); err != nil {
			t.Fatalf("status: %v\n%s", err, b.String())
		}
		m := map[string]inventory.KeyUse{}
		for _, u := range uses {
			m[u.KeyID] = u
		}
		return m
	}
	// The owner makes a new set of recovery codes: only the appeal holds
	// the old key now.
	if _, err := st.ReplaceRecoveryCodes(ctx, "acc-ks", codes(fresh.CurrentID()), false); err != nil {
		t.Fatal(err)
	}
	u := status()
	o, n := u[old.CurrentID()], u[fresh.CurrentID()]
	if len(u) != 2 || !n.Current || n.Retirable || n.SealedRows[store.SealedTokens] != 1 || n.RecoveryCodes != 2 ||
		o.Current || o.Retirable || o.SealedRows[store.SealedTokens] != 0 || o.RecoveryCodes != 0 ||
		!slices.Equal(o.Workflows, []string{"apl_ks1"}) || !slices.Equal(o.CancelLinks, []string{"apl_ks1"}) {
		t.Fatalf("status with the appeal open: %+v", u)
	}
	// The appeal ends: the old key can go.
	if err := ts.GetDefaultClient().SignalWorkflow(ctx, "apl_ks1", "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.SetAppealStatus(ctx, "apl_ks1", "cancelled", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !status()[old.CurrentID()].Retirable {
		if time.Now().After(deadline) {
			t.Fatalf("the old key is still in use after its last workflow ended: %+v", status())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Without Temporal, an appeal open in the store keeps every older key.
	delete(env, "TEMPORAL_ADDRESS")
	if _, err := st.CreateAppeal(ctx, store.Appeal{ID: "apl_ks2", AccountID: "acc-ks2", ApplicantType: "personal",
		TokenHash: store.TokenHash("ks2"), Status: "pending_review"}); err != nil {
		t.Fatal(err)
	}
	if o := status()[old.CurrentID()]; o.Retirable || !strings.Contains(strings.Join(o.Blockers, ";"), "1 appeals are open and Temporal could not be read") {
		t.Fatalf("without Temporal: %+v", o)
	}
	out.Reset()
	if err := run(ctx, []string{"keys", "status"}, getenv, &out, &out); err != nil || !strings.Contains(out.String(), "open workflows:       unknown") {
		t.Fatalf("status without Temporal: %v\n%s", err, out.String())
	}
}

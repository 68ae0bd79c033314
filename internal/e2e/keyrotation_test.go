package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestCancelLinkSurvivesKeyRotation (issue 12, build item 7): an appeal is
// filed and its owner-cancel link sent under one key; the ring is rotated
// (the new key first, the old one second) and the worker and API restart
// with it. The link sent before still cancels the appeal through POST
// /v1/appeals/{id}/cancel; an API whose ring lost the old key refuses it
// with 401. Key status shows the old key in use by the appeal's workflow
// until that workflow ends, and then lets it go.
func TestCancelLinkSurvivesKeyRotation(t *testing.T) {
	st := storetest.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	old, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := mfa.ParseKeyring(fresh.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, old)
	m := harness.MinIOServer(t)
	bucket := m.Bucket(t)
	blobs, err := blob.Open(ctx, blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: bucket, Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	outbox := notify.Outbox{Store: st}
	appeals := api.AppealConfig{DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Retention: 2 * time.Second, PublicURL: "https://mfaflow.example"}
	// A process of the given ring: its Temporal client, worker and API.
	temporalFor := func(keys *mfa.Keyring) client.Client {
		return ts.NewClientWithOptions(codec.ClientOptions(keys, client.Options{}))
	}
	startWorker := func(keys *mfa.Keyring) sdkworker.Worker {
		// Versioned as production's workers are; both rings' workers are
		// one build, the first makes it current.
		tc := temporalFor(keys)
		w := sdkworker.New(tc, workflows.TaskQueue, worker.Options(temporalharness.TestBuildID))
		worker.Register(w, &activities.Activities{Store: st, Notifier: outbox, Keys: keys, Blobs: blobs})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if _, err := worker.Bootstrap(bctx, tc, temporalharness.TestBuildID); err != nil {
			t.Fatal(err)
		}
		return w
	}
	startAPI := func(keys *mfa.Keyring) *httptest.Server {
		tc := temporalFor(keys)
		hs := httptest.NewServer(api.NewServer(api.Deps{
			Store: st, Temporal: tc, Documents: blobs, Appeals: appeals, Notifier: outbox, Keys: keys,
			ConsoleService:   &console.Service{Store: st, Keys: keys, Notifier: outbox, OnFactorUsed: api.FactorUsedHook(st, tc, nil)},
			OwnerCancelToken: func(id string) string { return activities.OwnerCancelToken(keys, id) },
			Console:          auth.NewConsoleKeys([]string{consoleKey}),
			JWT:              &auth.Verifier{Keys: auth.HS256(jwtSecret)},
		}))
		t.Cleanup(hs.Close)
		return hs
	}
	before := startWorker(old)
	s := &stack{t: t, st: st, keys: old, blobs: blobs, bucket: bucket, ts: ts, clock: &clock{},
		client: &http.Client{Timeout: time.Minute}, apis: []*httptest.Server{startAPI(old)}}
	s.admin = staff(t, "admin-e2e", "", auth.RoleAdmin)

	// Before the rotation: an appeal filed and submitted; the owner's old
	// channels get the cancel link.
	const acct, phone, idNum = "e2e-rotation", "13800000071", "11010519491231002X"
	s.putAccount(acct, phone, store.LoginMFA)
	s.bindDirect(acct)
	code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, idNum))
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, out)
	}
	id, token := out["appeal_id"].(string), out["access_token"].(string)
	uploadOK(t, s, "/v1/appeals/"+id+"/documents/id_holding_photo", token, jpeg(50_000))
	if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, out)
	}
	link := ""
	for deadline := time.Now().Add(time.Minute); link == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		msgs, err := st.ListOutbox(ctx, acct+"@example.com", 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if l := regexp.MustCompile(`https://\S+/owner-cancel\?token=[A-Za-z0-9_-]+`).FindString(m.Body); l != "" {
				link = l
			}
		}
	}
	if link == "" {
		t.Fatal("no cancel link was sent to the old channels")
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	cancelToken := u.Query().Get("token")
	if mfa.LinkTokenKeyID(cancelToken) != old.CurrentID() {
		t.Fatalf("the cancel link does not carry the id of the key that made it (%s)", old.CurrentID())
	}

	// The rotation: the worker and the API restart with the new key first;
	// the sealed rows are re-sealed.
	before.Stop()
	w := startWorker(rotated)
	t.Cleanup(w.Stop)
	s.apis = []*httptest.Server{startAPI(rotated), startAPI(fresh)}
	s.keys = rotated
	if _, err := inventory.Rotate(ctx, st, rotated, 100); err != nil {
		t.Fatal(err)
	}

	// The old key is still in use: the appeal's workflow holds payloads
	// sealed with it, and its cancel link carries it.
	status := func() inventory.KeyUse {
		t.Helper()
		ids, err := inventory.OpenAppealIDs(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		open, err := codec.OpenWorkflowKeys(ctx, ts.GetDefaultClient(), ts.GetDefaultNamespace(), ids)
		if err != nil {
			t.Fatal(err)
		}
		var ows []inventory.OpenWorkflow
		for _, o := range open {
			ows = append(ows, inventory.OpenWorkflow{ID: o.ID, Appeal: o.Type == "UnbindAppeal", KeyIDs: o.KeyIDs})
		}
		uses, err := inventory.Status(ctx, st, rotated, ows, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range uses {
			if u.KeyID == old.CurrentID() {
				return u
			}
		}
		t.Fatal("the old key is not in the report")
		return inventory.KeyUse{}
	}
	if u := status(); u.Retirable || !slices.Contains(u.Workflows, id) || !slices.Contains(u.CancelLinks, id) || u.SealedRows[store.SealedDevices] != 0 {
		t.Fatalf("old key after the rotation: %+v", u)
	}

	// An API whose ring lost the old key refuses the link: 401.
	if code, out, _ := s.call(1, http.MethodPost, "/v1/appeals/"+id+"/cancel", "", map[string]string{"token": cancelToken}); code != http.StatusUnauthorized {
		t.Fatalf("cancel with a removed key = %d %v, want 401", code, out)
	}
	// With the rotated ring the link sent before the rotation cancels.
	code, out, _ = s.call(0, http.MethodPost, "/v1/appeals/"+id+"/cancel", "", map[string]string{"token": cancelToken})
	if code != http.StatusOK || out["status"] != workflows.AppealCancelled || out["cancelled_by"] != "owner" {
		t.Fatalf("cancel with a link sent before the rotation = %d %v", code, out)
	}

	// Once the appeal's workflow ends (after its short retention), nothing
	// uses the old key.
	deadline := time.Now().Add(time.Minute)
	for u := status(); !u.Retirable; u = status() {
		if time.Now().After(deadline) {
			t.Fatalf("the old key is still in use after the appeal ended: %+v", u)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.HasPrefix(activities.OwnerCancelToken(rotated, id), fresh.CurrentID()) {
		t.Fatal("new links are not made with the new key")
	}
}

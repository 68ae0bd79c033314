package workflows_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protopath"
	"google.golang.org/protobuf/reflect/protorange"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// appealHistory is where -update records the history of the current code; the
// histories of earlier shipped versions stay beside it (_v1, ...) and every
// one of them is replayed.
const appealHistory = "testdata/unbindappeal_personal_v2.json"

// retentionHistory is where -update records the history of the current
// DocumentRetention, which auto-upgrades (worker.Register): a retention
// asleep when a new build becomes current wakes on it, so every shipped
// version's history must replay on the current code.
const retentionHistory = "testdata/documentretention_v1.json"

// The applicant of the recorded appeal. Test data only; none of it may be
// readable in the history or the search attributes.
var replayApplicant = workflows.Applicant{
	LoginKind: "qq", LoginID: "771234567", BoundPhone: "+8613700137000",
	Name: "Wang Xiaoming", IDNumber: "11010519491231002X", ContactPhone: "+8613600136000",
}

func replayPII() []string {
	a := replayApplicant
	return []string{a.LoginID, a.BoundPhone, strings.TrimPrefix(a.BoundPhone, "+86"), a.Name, a.IDNumber, a.ContactPhone,
		strings.TrimPrefix(a.ContactPhone, "+86")}
}

// TestUnbindAppealOnServer runs a whole personal appeal on a real Temporal
// server with the production registration, real activities on SQLite and
// a real MinIO, payloads and failures encrypted by the codec: create,
// upload, submit, claim, approve, a cool-down of 0, the unbind, and the
// documents deleted after a short retention. It checks that no PII is
// readable in the history or the search attributes and, with -update,
// records the history for TestReplayUnbindAppeal.
func TestUnbindAppealOnServer(t *testing.T) {
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := temporalharness.Start(t, codec.DataConverter(keys))
	c := srv.NewClientWithOptions(client.Options{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys), Logger: quietLogger()})
	st := storetest.SQLite(t)
	m := harness.MinIOServer(t)
	bs, err := blob.Open(ctx, blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t), Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Store: st, Notifier: notify.Outbox{Store: st}, Keys: keys, Blobs: bs}
	startWorker(t, c, acts)

	const account, id = "acct-appeal-replay", "apl_replay1"
	ap := replayApplicant
	if _, err := st.PutAccount(ctx, store.Account{ID: account, Type: store.Personal, BoundPhone: ap.BoundPhone, Email: "owner@example.com",
		Logins:   []store.Login{{Kind: store.LoginQQ, ID: ap.LoginID}},
		RealName: store.RealName{Verified: true, Name: ap.Name, IDNumber: ap.IDNumber}, LoginMethod: store.LoginMFA}); err != nil {
		t.Fatal(err)
	}
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal(secret, mfa.AAD(string(store.SealedDevices), "dev-replay"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateDevice(ctx, store.Device{ID: "dev-replay", AccountID: account, Type: store.Virtual, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateAppeal(ctx, store.Appeal{ID: id, AccountID: account, ApplicantType: workflows.ApplicantPersonal,
		TokenHash: store.TokenHash("apt_replay"), Status: "filing"}); err != nil {
		t.Fatal(err)
	}

	in := workflows.AppealInput{AppealID: id, AccountID: account, ApplicantType: workflows.ApplicantPersonal, Applicant: ap, RemoteIP: "192.0.2.9",
		Policy: workflows.AppealPolicy{DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Cooldown: 0, Retention: 2 * time.Second, PublicURL: "https://mfaflow.example"}}
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.UnbindAppeal, in)
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: workflows.UpdateAppealCreate, WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	if err != nil {
		t.Fatal(err)
	}
	var state workflows.AppealState
	if err := h.Get(ctx, &state); err != nil || state.Status != workflows.AppealCollecting {
		t.Fatalf("create: %+v, %v", state, err)
	}
	run, err := start.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(name string, arg any) (workflows.AppealState, error) {
		t.Helper()
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return workflows.AppealState{}, err
		}
		var st workflows.AppealState
		err = h.Get(ctx, &st)
		return st, err
	}
	mustStatus := func(st workflows.AppealState, err error, want string) {
		t.Helper()
		if err != nil || st.Status != want {
			t.Fatalf("status %q (%v), want %s", st.Status, err, want)
		}
	}

	key := "appeals/" + id + "/id_holding_photo-1"
	obj, err := bs.Put(ctx, key, strings.NewReader("a photo of the applicant holding the ID card"), -1, 0, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	_, err = send(workflows.UpdateSubmit, workflows.SubmitInput{})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeDocumentsMissing {
		t.Fatalf("submit without documents: %v", err)
	}
	state, err = send(workflows.UpdateAddDocument, workflows.AddDocumentInput{Document: workflows.Document{
		Type: workflows.DocIDHoldingPhoto, ObjectKey: key, SHA256: obj.SHA256, Size: obj.Size, ContentType: obj.ContentType}})
	mustStatus(state, err, workflows.AppealCollecting)
	state, err = send(workflows.UpdateSubmit, workflows.SubmitInput{})
	mustStatus(state, err, workflows.AppealPending)
	_, err = send(workflows.UpdateClaim, workflows.ReviewerInput{Reviewer: "rev-own", ReviewerAccountID: account})
	if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeSelfReview {
		t.Fatalf("self review: %v", err)
	}
	state, err = send(workflows.UpdateClaim, workflows.ReviewerInput{Reviewer: "rev-1"})
	mustStatus(state, err, workflows.AppealInReview)

	// The queue sees the appeal by its search attributes, which hold no PII.
	desc, err := c.DescribeWorkflowExecution(ctx, id, run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	fields := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for name, want := range map[string]string{workflows.SearchAppealStatus: `"in_review"`, workflows.SearchApplicantType: `"personal"`,
		workflows.SearchAssignee: `"rev-1"`, workflows.SearchSLABreached: `false`} {
		if got := string(fields[name].GetData()); got != want {
			t.Errorf("search attribute %s = %s, want %s", name, got, want)
		}
	}
	if fields[workflows.SearchSubmittedAt] == nil {
		t.Error("no submitted-at search attribute")
	}
	for name, p := range fields {
		for _, pii := range replayPII() {
			if bytes.Contains(p.GetData(), []byte(pii)) {
				t.Errorf("search attribute %s holds PII", name)
			}
		}
	}

	state, err = send(workflows.UpdateDecide, workflows.DecideInput{ReviewerInput: workflows.ReviewerInput{Reviewer: "rev-1"}, Decision: workflows.DecisionApprove})
	mustStatus(state, err, workflows.AppealCoolingDown)

	var final workflows.AppealState
	if err := c.GetWorkflow(ctx, id, run.GetRunID()).Get(ctx, &final); err != nil {
		t.Fatal(err)
	}
	if final.Status != workflows.AppealUnbound || !final.DocumentsDeleted {
		t.Fatalf("result: %+v", final)
	}
	if d, err := st.GetDevice(ctx, "dev-replay"); err != nil || d.Status != store.DeviceRevoked {
		t.Fatalf("device: %+v, %v", d, err)
	}
	if row, err := st.GetAppeal(ctx, id); err != nil || row.Status != workflows.AppealUnbound || row.ClosedAt.IsZero() {
		t.Fatalf("store row: %+v, %v", row, err)
	}
	if keys, err := bs.Keys(ctx, "appeals/"+id+"/"); err != nil || len(keys) != 0 {
		t.Fatalf("documents left: %v, %v", keys, err)
	}
	msgs, err := st.ListOutbox(ctx, account, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Kind != activities.KindRevokeSessions {
		t.Fatalf("console messages: %+v, %v", msgs, err)
	}
	entries, err := st.ListAudit(ctx, store.AuditFilter{AccountID: account, Subject: id})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range entries {
		actions[e.Action]++
	}
	for _, a := range []string{workflows.AuditAppealCreate, workflows.AuditAppealSubmit, workflows.AuditAppealClaim, workflows.AuditAppealDecide,
		workflows.AuditAppealUnbind, workflows.AuditAppealDocumentsDeleted} {
		if actions[a] != 1 {
			t.Errorf("audit %s: %d entries, want 1 (%v)", a, actions[a], actions)
		}
	}

	hist := &historypb.History{}
	iter := c.GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, e)
	}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	checkNoPII(t, hist, raw, replayPII()...)
	if *update {
		if err := os.MkdirAll(filepath.Dir(appealHistory), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(appealHistory, append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events)", appealHistory, len(hist.Events))
	}

	t.Run("DocumentRetention", func(t *testing.T) { recordRetention(t, ctx, c, acts, account) })
}

// recordRetention runs a DocumentRetention as a closed appeal hands it
// its documents: they are deleted at DeleteAt, once, with the audit entry.
// It checks the history holds only sealed payloads and, with -update,
// records it for TestReplayDocumentRetention.
func recordRetention(t *testing.T, ctx context.Context, c client.Client, acts *activities.Activities, account string) {
	const id = "apl_replay_retention"
	bs := acts.Blobs.(*blob.Store)
	var docs []workflows.Document
	for _, name := range []string{"id_holding_photo-1", "id_holding_photo-2"} {
		key := "appeals/" + id + "/" + name
		obj, err := bs.Put(ctx, key, strings.NewReader("a photo of the applicant holding the ID card: "+name), -1, 0, "image/jpeg")
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, workflows.Document{Type: workflows.DocIDHoldingPhoto, ObjectKey: key, SHA256: obj.SHA256, Size: obj.Size, ContentType: obj.ContentType})
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RetentionWorkflowID(id), TaskQueue: workflows.TaskQueue},
		workflows.DocumentRetention, workflows.RetentionInput{AppealID: id, AccountID: account, Documents: docs, DeleteAt: time.Now().Add(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.RetentionResult
	if err := run.Get(ctx, &res); err != nil || res.Deleted != len(docs) {
		t.Fatalf("retention: %+v, %v", res, err)
	}
	if keys, err := bs.Keys(ctx, "appeals/"+id+"/"); err != nil || len(keys) != 0 {
		t.Fatalf("documents left: %v, %v", keys, err)
	}
	entries, err := acts.Store.ListAudit(ctx, store.AuditFilter{AccountID: account, Subject: id})
	if err != nil || len(entries) != 1 || entries[0].Action != workflows.AuditAppealDocumentsDeleted {
		t.Fatalf("audit: %+v, %v", entries, err)
	}

	hist := &historypb.History{}
	iter := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, e)
	}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	checkSealed(t, hist, raw, 3, 0, replayPII()...)
	if *update {
		if err := os.WriteFile(retentionHistory, append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events)", retentionHistory, len(hist.Events))
	}
}

// checkNoPII fails if any of pii is in the history's JSON or in a
// payload's bytes, or if a payload other than a search attribute is not
// encrypted by the codec. Search attributes are not payloads the codec
// sees: they are checked for PII like the rest.
func checkNoPII(t *testing.T, hist *historypb.History, raw []byte, pii ...string) {
	t.Helper()
	checkSealed(t, hist, raw, 20, 5, pii...)
}

// checkSealed is checkNoPII for a history with at least minPayloads
// payloads and minAttrs search attributes.
func checkSealed(t *testing.T, hist *historypb.History, raw []byte, minPayloads, minAttrs int, pii ...string) {
	t.Helper()
	for _, s := range pii {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("PII (%d bytes) is readable in the history JSON", len(s))
		}
	}
	payloads, attrs := 0, 0
	err := protorange.Range(hist.ProtoReflect(), func(v protopath.Values) error {
		m, ok := v.Index(-1).Value.Interface().(protoreflect.Message)
		if !ok {
			return nil
		}
		pl, ok := m.Interface().(*commonpb.Payload)
		if !ok {
			return nil
		}
		for _, s := range pii {
			if bytes.Contains(pl.GetData(), []byte(s)) {
				t.Errorf("PII is in a payload's bytes")
			}
		}
		for _, step := range v.Path {
			if step.Kind() == protopath.FieldAccessStep && step.FieldDescriptor().Name() == "indexed_fields" {
				attrs++
				return nil
			}
		}
		payloads++
		if enc := string(pl.GetMetadata()[converter.MetadataEncoding]); enc != codec.Encoding {
			t.Errorf("payload with encoding %q, want %q", enc, codec.Encoding)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if payloads < minPayloads || attrs < minAttrs {
		t.Fatalf("found %d payloads and %d search attributes in the history; the walk is broken", payloads, attrs)
	}
}

// TestReplayUnbindAppeal replays the recorded appeal against the current
// UnbindAppeal: a change that breaks determinism fails here. Re-record with
// go test ./workflows/ -run TestUnbindAppealOnServer -update.
func TestReplayUnbindAppeal(t *testing.T) {
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/unbindappeal_*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("histories %v: want every shipped version's, at least two", files)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (record it with -run TestUnbindAppealOnServer -update)", err)
			}
			hist, err := client.HistoryFromJSON(bytes.NewReader(raw), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var completed bool
			for _, e := range hist.Events {
				completed = completed || e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
			}
			if !completed {
				t.Fatal("the recorded history does not end with the workflow completed")
			}
			checkNoPII(t, hist, raw, replayPII()...)
			r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys)})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflow(workflows.UnbindAppeal)
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// TestReplayDocumentRetention replays every recorded DocumentRetention
// (one per shipped version) against the current code. Re-record the
// current version's with go test ./workflows/ -run TestUnbindAppealOnServer -update.
func TestReplayDocumentRetention(t *testing.T) {
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/documentretention_*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("histories %v, %v (record with -run TestUnbindAppealOnServer -update)", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			hist, err := client.HistoryFromJSON(bytes.NewReader(raw), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var completed, timer bool
			for _, e := range hist.Events {
				completed = completed || e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
				timer = timer || e.GetEventType() == enumspb.EVENT_TYPE_TIMER_FIRED
			}
			if !completed || !timer {
				t.Fatalf("the recorded history does not wait for its timer (%v) and complete (%v)", timer, completed)
			}
			checkSealed(t, hist, raw, 3, 0, replayPII()...)
			r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys)})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflow(workflows.DocumentRetention)
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file); err != nil {
				t.Fatalf("replay: %v", err)
			}
			// Not vacuous: a retention that deletes before it waits fails.
			r, err = sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys)})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.RetentionInput) (workflows.RetentionResult, error) {
				ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
				var out workflows.DeleteDocumentsResult
				err := workflow.ExecuteActivity(ctx, workflows.ActivityDeleteDocuments, workflows.DeleteDocumentsInput{
					AppealID: in.AppealID, AccountID: in.AccountID, Documents: in.Documents}).Get(ctx, &out)
				return workflows.RetentionResult{Deleted: out.Deleted}, err
			}, workflow.RegisterOptions{Name: "DocumentRetention"})
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file); err == nil {
				t.Error("a retention that deletes before it waits replayed without error")
			}
		})
	}
}

// TestReplayGateCatchesAnIncompatibleChange: the gate is not vacuous. A
// workflow registered as UnbindAppeal that starts with another activity
// than the recorded one (as a reordering without GetVersion would) fails
// the replay of every shipped history.
func TestReplayGateCatchesAnIncompatibleChange(t *testing.T) {
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	reordered := func(ctx workflow.Context, in workflows.AppealInput) (workflows.AppealState, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		err := workflow.ExecuteActivity(ctx, workflows.ActivityUnbindAll, workflows.UnbindAllInput{AppealID: in.AppealID, AccountID: in.AccountID}).Get(ctx, nil)
		return workflows.AppealState{}, err
	}
	files, err := filepath.Glob("testdata/unbindappeal_*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("histories %v, %v", files, err)
	}
	for _, file := range files {
		r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys)})
		if err != nil {
			t.Fatal(err)
		}
		r.RegisterWorkflowWithOptions(reordered, workflow.RegisterOptions{Name: "UnbindAppeal"})
		if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file); err == nil {
			t.Errorf("%s: an incompatible workflow replayed without error", file)
		}
	}
}

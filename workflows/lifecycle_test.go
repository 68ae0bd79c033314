package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// appealServer is a real Temporal server (payloads encrypted by the codec)
// with the real activities on SQLite and a real MinIO, for tests of the
// appeal's lifecycle: versions and continue-as-new.
type appealServer struct {
	t    *testing.T
	ctx  context.Context
	srv  *temporalharness.Server
	c    client.Client
	db   *sqlitestore.DB
	bs   *blob.Store
	keys *mfa.Keyring
	acts *activities.Activities
}

func newAppealServer(t *testing.T, ctx context.Context, dynamic map[string]any) *appealServer {
	t.Helper()
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	co := client.Options{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys), Logger: quietLogger()}
	srv := temporalharness.StartWith(t, temporalharness.Options{Client: co, Dynamic: dynamic})
	db := storetest.SQLite(t)
	m := harness.MinIOServer(t)
	bs, err := blob.Open(ctx, blob.Config{Endpoint: m.Endpoint, AccessKey: m.AccessKey, SecretKey: m.SecretKey, Bucket: m.Bucket(t), Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	return &appealServer{t: t, ctx: ctx, srv: srv, c: srv.NewClientWithOptions(co), db: db, bs: bs, keys: keys,
		acts: &activities.Activities{Store: db, Notifier: notify.Outbox{Store: db}, Keys: keys, Blobs: bs}}
}

// worker starts a worker of build; the first one's build becomes current.
func (s *appealServer) worker(build string) sdkworker.Worker {
	s.t.Helper()
	return s.srv.NewWorkerWithOptions(workflows.TaskQueue, func(r sdkworker.Registry) { worker.Register(r, s.acts) }, worker.Options(build))
}

// account stores a verified personal account with one active device.
func (s *appealServer) account(id string) {
	s.t.Helper()
	ap := replayApplicant
	if _, err := s.db.PutAccount(s.ctx, store.Account{ID: id, Type: store.Personal, BoundPhone: ap.BoundPhone, Email: "owner@example.com",
		Logins:   []store.Login{{Kind: store.LoginQQ, ID: ap.LoginID + id}},
		RealName: store.RealName{Verified: true, Name: ap.Name, IDNumber: ap.IDNumber}, LoginMethod: store.LoginMFA}); err != nil {
		s.t.Fatal(err)
	}
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	sealed, err := s.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), "dev-"+id))
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.db.CreateDevice(s.ctx, store.Device{ID: "dev-" + id, AccountID: id, Type: store.Virtual, Secret: sealed,
		Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}); err != nil {
		s.t.Fatal(err)
	}
}

// file files an appeal of account (cool-down 0, a short retention) and
// returns its first run.
func (s *appealServer) file(id, account string) client.WorkflowRun {
	s.t.Helper()
	ap := replayApplicant
	ap.LoginID += account
	if _, err := s.db.CreateAppeal(s.ctx, store.Appeal{ID: id, AccountID: account, ApplicantType: workflows.ApplicantPersonal,
		TokenHash: store.TokenHash("apt_" + id), Status: "filing"}); err != nil {
		s.t.Fatal(err)
	}
	in := workflows.AppealInput{AppealID: id, AccountID: account, ApplicantType: workflows.ApplicantPersonal, Applicant: ap, RemoteIP: "192.0.2.9",
		Policy: workflows.AppealPolicy{DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Cooldown: 0, Retention: 2 * time.Second, PublicURL: "https://mfaflow.example"}}
	start := s.c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.UnbindAppeal, in)
	h, err := s.c.UpdateWithStartWorkflow(s.ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: workflows.UpdateAppealCreate, WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	var st workflows.AppealState
	if err := h.Get(s.ctx, &st); err != nil || st.Status != workflows.AppealCollecting {
		s.t.Fatalf("create %s: %+v, %v", id, st, err)
	}
	run, err := start.Get(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return run
}

// send sends an update to the appeal (its workflow ID, whatever run is
// open) and waits for the answer.
func (s *appealServer) send(id, name string, arg any) workflows.AppealState {
	s.t.Helper()
	return s.sendAs(id, "", name, arg)
}

// sendAs is send with the update id updateID (the client's own when "").
func (s *appealServer) sendAs(id, updateID, name string, arg any) workflows.AppealState {
	s.t.Helper()
	h, err := s.c.UpdateWorkflow(s.ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateID: updateID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		s.t.Fatalf("%s %s: %v", id, name, err)
	}
	var st workflows.AppealState
	if err := h.Get(s.ctx, &st); err != nil {
		s.t.Fatalf("%s %s: %v", id, name, err)
	}
	return st
}

// upload stores the n-th ID photo of the appeal and records it.
func (s *appealServer) upload(id string, n int) workflows.AppealState {
	s.t.Helper()
	return s.uploadAs(id, "", n)
}

// uploadAs is upload with the update id updateID.
func (s *appealServer) uploadAs(id, updateID string, n int) workflows.AppealState {
	s.t.Helper()
	key := fmt.Sprintf("appeals/%s/id_holding_photo-%d", id, n)
	obj, err := s.bs.Put(s.ctx, key, strings.NewReader(fmt.Sprintf("photo %d of the applicant holding the ID card", n)), -1, 0, "image/jpeg")
	if err != nil {
		s.t.Fatal(err)
	}
	return s.sendAs(id, updateID, workflows.UpdateAddDocument, workflows.AddDocumentInput{Document: workflows.Document{
		Type: workflows.DocIDHoldingPhoto, ObjectKey: key, SHA256: obj.SHA256, Size: obj.Size, ContentType: obj.ContentType}})
}

// approve submits the appeal, a reviewer claims and approves it.
func (s *appealServer) approve(id string) {
	s.t.Helper()
	for _, u := range []struct {
		name string
		arg  any
		want string
	}{
		{workflows.UpdateSubmit, workflows.SubmitInput{}, workflows.AppealPending},
		{workflows.UpdateClaim, workflows.ReviewerInput{Reviewer: "rev-1"}, workflows.AppealInReview},
		{workflows.UpdateDecide, workflows.DecideInput{ReviewerInput: workflows.ReviewerInput{Reviewer: "rev-1"}, Decision: workflows.DecisionApprove}, workflows.AppealCoolingDown},
	} {
		if st := s.send(id, u.name, u.arg); st.Status != u.want {
			s.t.Fatalf("%s %s: status %s, want %s", id, u.name, st.Status, u.want)
		}
	}
}

// result waits for the appeal's last run to end and returns its state.
func (s *appealServer) result(id string) workflows.AppealState {
	s.t.Helper()
	var final workflows.AppealState
	if err := s.c.GetWorkflow(s.ctx, id, "").Get(s.ctx, &final); err != nil {
		s.t.Fatalf("%s: %v", id, err)
	}
	return final
}

// builds returns the build ids of the workers that completed the run's
// workflow tasks, in order without repeats, and the next run's id when the
// run continued as new.
func (s *appealServer) builds(id, runID string) (builds []string, next string) {
	s.t.Helper()
	iter := s.c.GetWorkflowHistory(s.ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		if a := e.GetWorkflowTaskCompletedEventAttributes(); a != nil {
			b := a.GetDeploymentVersion().GetBuildId()
			if len(builds) == 0 || builds[len(builds)-1] != b {
				builds = append(builds, b)
			}
		}
		if a := e.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
			next = a.GetNewExecutionRunId()
		}
	}
	return builds, next
}

// pinnedTo returns the build the open or closed run is pinned to.
func (s *appealServer) pinnedTo(id string) string {
	s.t.Helper()
	d, err := s.c.DescribeWorkflowExecution(s.ctx, id, "")
	if err != nil {
		s.t.Fatal(err)
	}
	vi := d.GetWorkflowExecutionInfo().GetVersioningInfo()
	if vi.GetBehavior() != enumspb.VERSIONING_BEHAVIOR_PINNED {
		s.t.Fatalf("%s: versioning behavior %v, want pinned", id, vi.GetBehavior())
	}
	return vi.GetDeploymentVersion().GetBuildId()
}

// audits counts the appeal's audit entries of action.
func (s *appealServer) audits(account, id, action string) int {
	s.t.Helper()
	entries, err := s.db.ListAudit(s.ctx, store.AuditFilter{AccountID: account, Subject: id})
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Action == action {
			n++
		}
	}
	return n
}

// checkUnbound: the appeal ended unbound once, its device revoked and its
// documents deleted.
func (s *appealServer) checkUnbound(id, account string) workflows.AppealState {
	s.t.Helper()
	final := s.result(id)
	if final.Status != workflows.AppealUnbound || !final.DocumentsDeleted {
		s.t.Fatalf("%s: result %s, documents deleted %v", id, final.Status, final.DocumentsDeleted)
	}
	if n := s.audits(account, id, workflows.AuditAppealUnbind); n != 1 {
		s.t.Errorf("%s: %d unbind audit entries, want 1", id, n)
	}
	if d, err := s.db.GetDevice(s.ctx, "dev-"+account); err != nil || d.Status != store.DeviceRevoked {
		s.t.Errorf("%s: device %+v, %v", id, d.Status, err)
	}
	if keys, err := s.bs.Keys(s.ctx, "appeals/"+id+"/"); err != nil || len(keys) != 0 {
		s.t.Errorf("%s: documents left: %v, %v", id, keys, err)
	}
	return final
}

// TestAppealOutlivesARollout: a worker of build B runs next to build A
// while an appeal is open on A. Once B is made current, new appeals start
// on B while the open one finishes on A; a rollback (A current again)
// sends new appeals back to A, and the appeal open on B finishes on B.
// Every appeal is pinned and ends unbound exactly once.
func TestAppealOutlivesARollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppealServer(t, ctx, nil)
	const buildA, buildB = "build-a", "build-b"
	s.worker(buildA) // a fresh deployment: A becomes current
	for _, a := range []string{"acct-v1", "acct-v2", "acct-v3"} {
		s.account(a)
	}

	run1 := s.file("apl_v1", "acct-v1")
	s.upload("apl_v1", 1)
	if got := s.pinnedTo("apl_v1"); got != buildA {
		t.Fatalf("first appeal pinned to %q, want %s", got, buildA)
	}

	// B joins; A stays current until the operator says otherwise.
	s.worker(buildB)
	run2 := s.file("apl_v2", "acct-v2")
	if got := s.pinnedTo("apl_v2"); got != buildA {
		t.Fatalf("an appeal filed before B is current is pinned to %q, want %s", got, buildA)
	}
	// set-current-version B.
	if err := worker.SetCurrent(ctx, s.c, buildB); err != nil {
		t.Fatal(err)
	}
	run3 := s.file("apl_v3", "acct-v3")
	if got := s.pinnedTo("apl_v3"); got != buildB {
		t.Fatalf("an appeal filed after B is current is pinned to %q, want %s", got, buildB)
	}

	// The appeals open on A finish on A, with B current.
	for _, a := range []struct{ id, account string }{{"apl_v1", "acct-v1"}, {"apl_v2", "acct-v2"}} {
		if a.id == "apl_v2" {
			s.upload(a.id, 1)
		}
		s.approve(a.id)
		s.checkUnbound(a.id, a.account)
	}
	for id, run := range map[string]client.WorkflowRun{"apl_v1": run1, "apl_v2": run2} {
		if b, _ := s.builds(id, run.GetRunID()); len(b) != 1 || b[0] != buildA {
			t.Errorf("%s ran on builds %v, want only %s", id, b, buildA)
		}
	}

	// Rollback: A current again. A new appeal starts on A; the one open
	// on B stays there and finishes.
	if err := worker.SetCurrent(ctx, s.c, buildA); err != nil {
		t.Fatal(err)
	}
	s.account("acct-v4")
	run4 := s.file("apl_v4", "acct-v4")
	if got := s.pinnedTo("apl_v4"); got != buildA {
		t.Fatalf("an appeal filed after the rollback is pinned to %q, want %s", got, buildA)
	}
	for _, a := range []struct{ id, account string }{{"apl_v3", "acct-v3"}, {"apl_v4", "acct-v4"}} {
		s.upload(a.id, 1)
		s.approve(a.id)
		s.checkUnbound(a.id, a.account)
	}
	for id, want := range map[string]string{"apl_v3": buildB, "apl_v4": buildA} {
		run := map[string]client.WorkflowRun{"apl_v3": run3, "apl_v4": run4}[id]
		if b, _ := s.builds(id, run.GetRunID()); len(b) != 1 || b[0] != want {
			t.Errorf("%s ran on builds %v, want only %s", id, b, want)
		}
	}
}

// TestAppealContinuesAsNew: with Temporal suggesting continue-as-new after
// a few dozen events, an appeal with many uploads goes on in fresh runs
// under its appeal id, carrying its whole state, and then finishes
// correctly: every upload recorded and audited once (one sent again
// after a continue-as-new included), approved, unbound exactly once,
// every document ever held deleted.
func TestAppealContinuesAsNew(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppealServer(t, ctx, map[string]any{"limit.historyCount.suggestContinueAsNew": 40})
	s.worker("build-can")
	const id, account = "apl_can", "acct-can"
	s.account(account)
	first := s.file(id, account)

	const uploads = workflows.MaxUploadsPerType
	const firstUpload = "upload-1" // its update id, sent again below
	for n := 1; n <= uploads; n++ {
		updateID := ""
		if n == 1 {
			updateID = firstUpload
		}
		if st := s.uploadAs(id, updateID, n); st.Uploads[workflows.DocIDHoldingPhoto] != n || st.Status != workflows.AppealCollecting {
			t.Fatalf("upload %d: uploads %v, status %s", n, st.Uploads, st.Status)
		}
	}
	// The first upload, sent again with its update id (a client retrying
	// it) after the appeal continued as new, is answered and not applied
	// again: Temporal knows the id in the run that took it only. Applied
	// again, it would be refused as one upload too many.
	d, err := s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.GetWorkflowExecutionInfo().GetExecution().GetRunId() == first.GetRunID() {
		t.Fatalf("the appeal did not continue as new within %d uploads", uploads)
	}
	if st := s.uploadAs(id, firstUpload, 1); st.Uploads[workflows.DocIDHoldingPhoto] != uploads || st.Updates != uploads+1 {
		t.Fatalf("the repeated upload: uploads %v, updates %d, want %d and %d", st.Uploads, st.Updates, uploads, uploads+1)
	}
	s.approve(id)
	final := s.checkUnbound(id, account)

	// The appeal continued as new at least once, and every run was pinned
	// to the one build.
	runs := 0
	for runID := first.GetRunID(); runID != ""; runs++ {
		b, next := s.builds(id, runID)
		if len(b) != 1 || b[0] != "build-can" {
			t.Errorf("run %d ran on builds %v", runs, b)
		}
		runID = next
	}
	runs-- // the last run did not continue
	if runs == 0 {
		t.Fatal("the appeal never continued as new")
	}
	t.Logf("the appeal ran in %d runs", runs+1)

	// The search attributes the review queue finds appeals by went on with
	// the runs: the applicant type is set once, in the first.
	d, err = s.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	fields := d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for name, want := range map[string]string{workflows.SearchAppealStatus: `"unbound"`, workflows.SearchApplicantType: `"personal"`} {
		if got := string(fields[name].GetData()); got != want {
			t.Errorf("last run's search attribute %s = %s, want %s", name, got, want)
		}
	}

	if got := final.Updates; got != uploads+4 {
		t.Errorf("updates %d, want %d (create, %d uploads, submit, claim, decide)", got, uploads+4, uploads)
	}
	if n := s.audits(account, id, workflows.AuditAppealDocument); n != uploads {
		t.Errorf("%d document audit entries, want %d", n, uploads)
	}
	for _, a := range []string{workflows.AuditAppealCreate, workflows.AuditAppealSubmit, workflows.AuditAppealClaim,
		workflows.AuditAppealDecide, workflows.AuditAppealDocumentsDeleted} {
		if n := s.audits(account, id, a); n != 1 {
			t.Errorf("%d %s audit entries, want 1", n, a)
		}
	}
	received := 0
	for _, e := range final.Timeline {
		if strings.HasPrefix(e.Note, workflows.DocIDHoldingPhoto) {
			received++
		}
	}
	if received != uploads {
		t.Errorf("the timeline tells of %d uploads, want %d: the state was not carried whole", received, uploads)
	}
}

// TestRetentionFollowsTheCurrentVersion: DocumentRetention auto-upgrades
// (worker.Register says why). A retention started on build A and asleep
// when B is made current and A's workers are stopped (A drained) wakes on
// B and deletes the documents there, once.
func TestRetentionFollowsTheCurrentVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newAppealServer(t, ctx, nil)
	const buildA, buildB = "build-a", "build-b"
	wa := s.worker(buildA)
	s.worker(buildB)
	const id, account = "apl_ret", "acct-ret"
	key := "appeals/" + id + "/id_holding_photo-1"
	obj, err := s.bs.Put(ctx, key, strings.NewReader("a photo of the applicant holding the ID card"), -1, 0, "image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	const sleep = 12 * time.Second // ample for the switch below (well under a second when quiet)
	deleteAt := time.Now().Add(sleep)
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RetentionWorkflowID(id), TaskQueue: workflows.TaskQueue},
		workflows.DocumentRetention, workflows.RetentionInput{AppealID: id, AccountID: account, DeleteAt: deleteAt, Documents: []workflows.Document{
			{Type: workflows.DocIDHoldingPhoto, ObjectKey: key, SHA256: obj.SHA256, Size: obj.Size, ContentType: obj.ContentType}}})
	if err != nil {
		t.Fatal(err)
	}
	// Asleep on A: its first workflow task done, the timer started.
	for {
		if b, _ := s.builds(run.GetID(), run.GetRunID()); len(b) == 1 && b[0] == buildA {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the retention never started on A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	d, err := s.c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.GetWorkflowExecutionInfo().GetVersioningInfo().GetBehavior(); got != enumspb.VERSIONING_BEHAVIOR_AUTO_UPGRADE {
		t.Fatalf("retention versioning behavior %v, want auto-upgrade", got)
	}
	if err := worker.SetCurrent(ctx, s.c, buildB); err != nil {
		t.Fatal(err)
	}
	wa.Stop()
	if time.Now().After(deleteAt) {
		t.Fatalf("B became current only after the retention woke (more than %v); the test shows nothing", sleep)
	}

	var res workflows.RetentionResult
	if err := run.Get(ctx, &res); err != nil || res.Deleted != 1 {
		t.Fatalf("retention: %+v, %v", res, err)
	}
	if b, _ := s.builds(run.GetID(), run.GetRunID()); len(b) != 2 || b[0] != buildA || b[1] != buildB {
		t.Errorf("the retention ran on builds %v, want %s then %s", b, buildA, buildB)
	}
	if keys, err := s.bs.Keys(ctx, "appeals/"+id+"/"); err != nil || len(keys) != 0 {
		t.Errorf("documents left: %v, %v", keys, err)
	}
	if n := s.audits(account, id, workflows.AuditAppealDocumentsDeleted); n != 1 {
		t.Errorf("%d deletion audit entries, want 1", n)
	}
}

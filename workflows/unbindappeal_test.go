package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/mfaflow/mfaflow/workflows"
)

const (
	appealID = "apl_test1"
	acctID   = "acct-7"
	docKey1  = "appeals/" + appealID + "/id_holding_photo-1"
	docKey2  = "appeals/" + appealID + "/id_holding_photo-2"
	licKey   = "appeals/" + appealID + "/business_licence-1"
	hashA    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB    = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	// PII of the test applicant: it must never reach a search attribute.
	piiName = "Zhang San"
	piiID   = "11010519491231002X"
	piiTel  = "+8613800138000"
)

var appealPolicy = workflows.AppealPolicy{
	DocumentDeadline: 48 * time.Hour,
	ReviewSLA:        24 * time.Hour,
	Cooldown:         72 * time.Hour,
	Retention:        30 * 24 * time.Hour,
	PublicURL:        "https://mfaflow.example",
}

func personalAppeal(p workflows.AppealPolicy) workflows.AppealInput {
	return workflows.AppealInput{
		AppealID: appealID, AccountID: acctID, ApplicantType: workflows.ApplicantPersonal, Policy: p, RemoteIP: "192.0.2.1",
		Applicant: workflows.Applicant{LoginKind: "qq", LoginID: "10001", BoundPhone: piiTel, Name: piiName, IDNumber: piiID, ContactPhone: "+8613900139000"},
	}
}

func enterpriseAppeal(p workflows.AppealPolicy) workflows.AppealInput {
	in := personalAppeal(p)
	in.ApplicantType = workflows.ApplicantEnterprise
	in.Applicant.CompanyName, in.Applicant.CompanyRegNumber = "Example Ltd", "91350100M000100Y43"
	return in
}

func doc(typ, key, hash string) workflows.AddDocumentInput {
	return workflows.AddDocumentInput{Document: workflows.Document{Type: typ, ObjectKey: key, SHA256: hash, Size: 1234, ContentType: "image/jpeg"}}
}

var (
	photo1  = doc(workflows.DocIDHoldingPhoto, docKey1, hashA)
	photo2  = doc(workflows.DocIDHoldingPhoto, docKey2, hashB)
	licence = doc(workflows.DocBusinessLicence, licKey, hashB)
	r1      = workflows.ReviewerInput{Reviewer: "rev-1", ReviewerAccountID: "acct-r1"}
	r2      = workflows.ReviewerInput{Reviewer: "rev-2"}
	selfRev = workflows.ReviewerInput{Reviewer: "rev-3", ReviewerAccountID: acctID}
)

func decide(r workflows.ReviewerInput, decision, reason string) workflows.DecideInput {
	return workflows.DecideInput{ReviewerInput: r, Decision: decision, Reason: reason}
}

// appealStep is one update (or, with signal set, a SignalDeviceUsed) sent
// at a point of the workflow's clock, with what it should answer.
type appealStep struct {
	at     time.Duration
	update string
	arg    any    // nil: no argument
	signal bool   // send SignalDeviceUsed with arg instead of an update
	err    string // the error type expected, from the validator or the handler
	status string // the status answered, or ""
}

// appealMocks stands in for the activities and records their calls.
type appealMocks struct {
	mu          sync.Mutex
	eligibility func(n int) error // nil: eligible
	unbind      func(n int) error // nil: succeeds
	notify      func(n int) error // nil: succeeds
	env         *testsuite.TestWorkflowEnvironment
	statusAt    map[string]time.Time // when each status was first mirrored (workflow clock)
	deletedAt   time.Time
	calls       calls
	statuses    []workflows.SetAppealStatusInput
	audits      []workflows.AppealAuditInput
	notices     []string
	leads       []workflows.NotifyLeadInput
	deletedObjs []string
	deleteDocs  []workflows.DeleteDocumentsInput
	unbinds     []workflows.UnbindAllInput
	revokes     []workflows.RevokeSessionsInput
	retentions  []workflows.RetentionInput
	sa          map[string]any // latest value of each search attribute
	saValues    []string       // every value ever upserted
}

func (m *appealMocks) install(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(a.CheckEligibility, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.CheckEligibilityInput) error {
			n := m.calls.add("eligibility")
			if m.eligibility != nil {
				return m.eligibility(n)
			}
			return nil
		}).Maybe()
	env.OnActivity(a.SetAppealStatus, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.SetAppealStatusInput) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.statuses = append(m.statuses, in)
			if _, ok := m.statusAt[in.Status]; !ok && m.env != nil {
				m.statusAt[in.Status] = m.env.Now()
			}
			return nil
		}).Maybe()
	env.OnActivity(a.AuditAppeal, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.AppealAuditInput) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.audits = append(m.audits, in)
			return nil
		}).Maybe()
	env.OnActivity(a.NotifyAppealOwner, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.AppealNoticeInput) error {
			if n := m.calls.add("notify"); m.notify != nil {
				if err := m.notify(n); err != nil {
					return err
				}
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			m.notices = append(m.notices, in.Event)
			return nil
		}).Maybe()
	env.OnActivity(a.NotifyLead, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.NotifyLeadInput) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.leads = append(m.leads, in)
			return nil
		}).Maybe()
	env.OnActivity(a.DeleteObjects, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.DeleteObjectsInput) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.deletedObjs = append(m.deletedObjs, in.Keys...)
			return nil
		}).Maybe()
	env.OnActivity(a.UnbindAll, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.UnbindAllInput) (workflows.UnbindAllResult, error) {
			n := m.calls.add("unbind")
			if m.unbind != nil {
				if err := m.unbind(n); err != nil {
					return workflows.UnbindAllResult{}, err
				}
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			m.unbinds = append(m.unbinds, in)
			return workflows.UnbindAllResult{DeviceIDs: []string{"dev-1"}}, nil
		}).Maybe()
	// The document retention after the grace is a workflow of its own:
	// recorded here, and tested alone in TestDocumentRetention.
	env.RegisterWorkflow(workflows.DocumentRetention)
	env.OnWorkflow(workflows.DocumentRetention, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RetentionInput) (workflows.RetentionResult, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.retentions = append(m.retentions, in)
			m.deleteDocs = append(m.deleteDocs, workflows.DeleteDocumentsInput{AppealID: in.AppealID, AccountID: in.AccountID, Documents: in.Documents})
			return workflows.RetentionResult{Deleted: len(in.Documents)}, nil
		}).Maybe()
	env.OnActivity(a.RevokeSessions, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.RevokeSessionsInput) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.revokes = append(m.revokes, in)
			return nil
		}).Maybe()
	env.OnActivity(a.DeleteDocuments, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.DeleteDocumentsInput) (workflows.DeleteDocumentsResult, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.deleteDocs = append(m.deleteDocs, in)
			if m.env != nil {
				m.deletedAt = m.env.Now()
			}
			return workflows.DeleteDocumentsResult{Deleted: len(in.Documents)}, nil
		}).Maybe()
	m.sa = map[string]any{}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		m.mu.Lock()
		defer m.mu.Unlock()
		for k, v := range sa.GetUntypedValues() {
			m.sa[k.GetName()] = v
			m.saValues = append(m.saValues, fmt.Sprint(v))
		}
	}).Maybe()
}

func (m *appealMocks) statusList() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.statuses {
		out = append(out, s.Status)
	}
	return out
}

func (m *appealMocks) auditActions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.audits {
		out = append(out, e.Action+":"+e.Outcome)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func newAppealEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *appealMocks) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: appealID, TaskQueue: workflows.TaskQueue})
	m := &appealMocks{env: env, statusAt: map[string]time.Time{}}
	m.install(env)
	return env, m
}

// queryAt queries the appeal at a point of the workflow's clock.
func queryAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, at time.Duration) *workflows.AppealState {
	t.Helper()
	var st workflows.AppealState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryAppeal)
		if err != nil {
			t.Errorf("query at %v: %v", at, err)
			return
		}
		if err := v.Get(&st); err != nil {
			t.Errorf("query at %v: %v", at, err)
		}
	}, at)
	return &st
}

// runAppeal starts UnbindAppeal with in, sends steps and returns the
// answered states and the final state. The workflow must complete.
func runAppeal(t *testing.T, env *testsuite.TestWorkflowEnvironment, m *appealMocks, in workflows.AppealInput, steps []appealStep) ([]workflows.AppealState, workflows.AppealState) {
	t.Helper()
	type result struct {
		st   workflows.AppealState
		err  error
		done bool
	}
	results := make([]result, len(steps))
	for i, s := range steps {
		env.RegisterDelayedCallback(func() {
			if s.signal {
				env.SignalWorkflow(workflows.SignalDeviceUsed, s.arg)
				results[i].done = true
				return
			}
			var args []any
			if s.arg != nil {
				args = append(args, s.arg)
			}
			env.UpdateWorkflow(s.update, fmt.Sprintf("u%d", i), &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { results[i] = result{err: err, done: true} },
				OnComplete: func(res any, err error) {
					st, _ := res.(workflows.AppealState)
					results[i] = result{st: st, err: err, done: true}
				},
			}, args...)
		}, s.at)
	}
	env.ExecuteWorkflow(workflows.UnbindAppeal, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var final workflows.AppealState
	if err := env.GetWorkflowResult(&final); err != nil {
		t.Fatal(err)
	}
	states := make([]workflows.AppealState, len(steps))
	for i, s := range steps {
		r := results[i]
		states[i] = r.st
		name := s.update
		if s.signal {
			name = "signal"
		}
		if !r.done {
			t.Errorf("step %d (%s at %v): no answer", i, name, s.at)
			continue
		}
		if errType(r.err) != s.err {
			t.Errorf("step %d (%s at %v): error %v, want %q", i, name, s.at, r.err, s.err)
		}
		if s.status != "" && r.st.Status != s.status {
			t.Errorf("step %d (%s at %v): status %q, want %q", i, name, s.at, r.st.Status, s.status)
		}
	}
	checkAppealInvariants(t, m, final)
	return states, final
}

// checkAppealInvariants: no reviewer in the timeline, no PII in search
// attributes, audit keys unique, every status mirrored, closed ones closed.
func checkAppealInvariants(t *testing.T, m *appealMocks, final workflows.AppealState) {
	t.Helper()
	for _, e := range final.Timeline {
		for _, r := range []string{r1.Reviewer, r2.Reviewer, selfRev.Reviewer} {
			if strings.Contains(e.Note, r) {
				t.Errorf("timeline names reviewer %s: %q", r, e.Note)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.saValues {
		for _, pii := range []string{piiName, piiID, piiTel, "10001"} {
			if strings.Contains(v, pii) {
				t.Errorf("search attribute value %q holds PII", v)
			}
		}
	}
	keys := map[string]bool{}
	for _, e := range m.audits {
		if keys[e.Key] {
			t.Errorf("audit key %q used twice", e.Key)
		}
		keys[e.Key] = true
	}
	if n := len(m.statuses); n > 0 {
		last := m.statuses[n-1]
		if last.Status != final.Status || last.Closed != workflows.AppealClosed(final.Status) {
			t.Errorf("last mirrored status %+v, final %q", last, final.Status)
		}
	}
	if got := m.sa[workflows.SearchAppealStatus]; final.Status != "" && got != final.Status {
		t.Errorf("search attribute status %v, final %q", got, final.Status)
	}
}

func TestAppealRefusedAtCreation(t *testing.T) {
	for _, typ := range []string{workflows.ErrTypeRealNameNotVerified, workflows.ErrTypeIdentityMismatch, workflows.ErrTypeNoMFABound} {
		t.Run(typ, func(t *testing.T) {
			env, m := newAppealEnv(t)
			m.eligibility = func(int) error { return bizErr(typ) }
			_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
				{at: 0, update: workflows.UpdateAppealCreate, err: typ},
			})
			if final.Status != workflows.AppealIneligible || final.ClosedAt.IsZero() {
				t.Fatalf("final = %+v", final)
			}
			if got := m.statusList(); len(got) != 1 || got[0] != workflows.AppealIneligible || !m.statuses[0].Closed {
				t.Fatalf("mirrored %+v", m.statuses)
			}
			if got := m.auditActions(); len(got) != 1 || got[0] != workflows.AuditAppealCreate+":denied" || m.audits[0].Details["reason"] != typ {
				t.Fatalf("audit %v", m.audits)
			}
			if len(m.deleteDocs) != 0 || len(m.notices) != 0 {
				t.Fatalf("a refused appeal deleted %v, notified %v", m.deleteDocs, m.notices)
			}
			if m.calls.get("eligibility") != 1 {
				t.Fatalf("eligibility checked %d times", m.calls.get("eligibility"))
			}
			if m.sa[workflows.SearchAppealStatus] != workflows.AppealIneligible {
				t.Fatalf("search attributes %v", m.sa)
			}
		})
	}
}

// TestAppealCreateUnavailable: the store down during the check answers
// Unavailable and creates nothing; the API's retry creates the appeal.
func TestAppealCreateUnavailable(t *testing.T) {
	env, m := newAppealEnv(t)
	down := true
	m.eligibility = func(int) error {
		if down {
			return temporal.NewApplicationError("store down", "StoreDown")
		}
		return nil
	}
	env.RegisterDelayedCallback(func() { down = false }, 5*time.Minute)
	before := queryAt(t, env, 4*time.Minute)
	_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate, err: workflows.ErrTypeUnavailable},
		{at: 2 * time.Minute, update: workflows.UpdateAddDocument, arg: photo1, err: workflows.ErrTypeAppealWrongState},
		{at: 10 * time.Minute, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting},
		{at: 11 * time.Minute, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting},
		{at: 12 * time.Minute, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByApplicant}, status: workflows.AppealCancelled},
	})
	if before.Status != "" {
		t.Fatalf("status before creation %q", before.Status)
	}
	if final.Status != workflows.AppealCancelled || !documentsGone(m, final) {
		t.Fatalf("final = %+v", final)
	}
	if got := count(m.auditActions(), workflows.AuditAppealCreate+":ok"); got != 1 {
		t.Fatalf("create audited %d times", got)
	}
}

func TestAppealExpiresWithoutDocuments(t *testing.T) {
	env, m := newAppealEnv(t)
	beforeRetention := queryAt(t, env, 48*time.Hour+workflows.ClosedGrace-time.Hour)
	states, final := runAppeal(t, env, m, enterpriseAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: licence, status: workflows.AppealCollecting},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, err: workflows.ErrTypeDocumentsMissing},
		{at: 49 * time.Hour, update: workflows.UpdateAddDocument, arg: photo1, err: workflows.ErrTypeAppealWrongState},
		{at: 49 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, err: workflows.ErrTypeAppealWrongState},
	})
	if got := states[0]; got.DocumentDeadline.Sub(workflow0(t, final)) != 48*time.Hour || len(got.RequiredDocuments) != 2 {
		t.Fatalf("create answered %+v", got)
	}
	if final.Status != workflows.AppealExpired || final.ClosedAt.IsZero() || !documentsGone(m, final) {
		t.Fatalf("final = %+v", final)
	}
	if beforeRetention.Status != workflows.AppealExpired || beforeRetention.DocumentsDeleted {
		t.Fatalf("before the retention period: %+v", beforeRetention)
	}
	if got := m.statusList(); strings.Join(got, ",") != "collecting_documents,expired" {
		t.Fatalf("mirrored %v", got)
	}
	if len(m.deleteDocs) != 1 || len(m.deleteDocs[0].Documents) != 1 || m.deleteDocs[0].Documents[0].ObjectKey != licKey {
		t.Fatalf("deleted %+v", m.deleteDocs)
	}
	if count(m.auditActions(), workflows.AuditAppealExpire+":ok") != 1 {
		t.Fatalf("audit %v", m.auditActions())
	}
}

// workflow0 returns the workflow's start time from the first timeline entry.
func workflow0(t *testing.T, st workflows.AppealState) time.Time {
	t.Helper()
	if len(st.Timeline) == 0 {
		t.Fatal("empty timeline")
	}
	return st.Timeline[0].At
}

func TestAppealValidators(t *testing.T) {
	env, m := newAppealEnv(t)
	bad := func(mut func(*workflows.Document)) workflows.AddDocumentInput {
		d := photo1
		mut(&d.Document)
		return d
	}
	_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, err: workflows.ErrTypeAppealWrongState},
		{at: time.Second, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: licence, err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: bad(func(d *workflows.Document) { d.SHA256 = "abc" }), err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: bad(func(d *workflows.Document) { d.SHA256 = strings.ToUpper(hashA) }), err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: bad(func(d *workflows.Document) { d.Size = 0 }), err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: bad(func(d *workflows.Document) { d.ObjectKey = "appeals/apl_other/x" }), err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: bad(func(d *workflows.Document) { d.ObjectKey = "appeals/" + appealID + "/" }), err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateAddDocument, arg: bad(func(d *workflows.Document) { d.ObjectKey = "appeals/" + appealID + "/../x" }), err: workflows.ErrTypeInvalidInput},
		{at: time.Minute, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, err: workflows.ErrTypeDocumentsMissing},
		{at: time.Minute, update: workflows.UpdateClaim, arg: r1, err: workflows.ErrTypeAppealWrongState},
		{at: time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), err: workflows.ErrTypeAppealWrongState},
		{at: time.Minute, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: "someone"}, err: workflows.ErrTypeInvalidInput},
		{at: 2 * time.Minute, update: workflows.UpdateAddDocument, arg: photo1, status: workflows.AppealCollecting},
		{at: 3 * time.Minute, update: workflows.UpdateAddDocument, arg: photo1, status: workflows.AppealCollecting}, // the same upload again
		{at: 4 * time.Minute, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
		{at: 5 * time.Minute, update: workflows.UpdateAddDocument, arg: photo2, err: workflows.ErrTypeAppealWrongState},
		{at: 5 * time.Minute, update: workflows.UpdateClaim, arg: workflows.ReviewerInput{}, err: workflows.ErrTypeInvalidInput},
		{at: 5 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), err: workflows.ErrTypeAppealWrongState},
		{at: 6 * time.Minute, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview},
		{at: 7 * time.Minute, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview}, // claimed again: same answer
		{at: 7 * time.Minute, update: workflows.UpdateClaim, arg: r2, err: workflows.ErrTypeAppealWrongState},
		{at: 7 * time.Minute, update: workflows.UpdateDecide, arg: decide(r2, workflows.DecisionApprove, ""), err: workflows.ErrTypeNotAssignee},
		{at: 8 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionReject, " "), err: workflows.ErrTypeInvalidInput},
		{at: 8 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionRequestInfo, ""), err: workflows.ErrTypeInvalidInput},
		{at: 8 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, "maybe", "x"), err: workflows.ErrTypeInvalidInput},
		{at: 8 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionReject, strings.Repeat("x", workflows.MaxReasonLength+1)), err: workflows.ErrTypeInvalidInput},
		{at: 9 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionReject, "the photo does not show the ID card"), status: workflows.AppealRejected},
		{at: 10 * time.Minute, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByOwner}, err: workflows.ErrTypeAppealWrongState},
		{at: 10 * time.Minute, update: workflows.UpdateAppealCreate, err: workflows.ErrTypeAppealWrongState},
	})
	if final.Status != workflows.AppealRejected || !documentsGone(m, final) {
		t.Fatalf("final = %+v", final)
	}
	if got := final.Timeline[len(final.Timeline)-2]; got.Status != workflows.AppealRejected || got.Note != "the photo does not show the ID card" {
		t.Fatalf("reject in the timeline: %+v", got)
	}
	if got := count(m.auditActions(), workflows.AuditAppealDocument+":ok"); got != 1 {
		t.Fatalf("the same upload recorded %d times", got)
	}
	if got := count(m.auditActions(), workflows.AuditAppealClaim+":ok"); got != 1 {
		t.Fatalf("claim audited %d times", got)
	}
	if strings.Join(m.notices, ",") != "filed,rejected" {
		t.Fatalf("notices %v", m.notices)
	}
	if m.calls.get("unbind") != 0 {
		t.Fatal("a rejected appeal unbound")
	}
}

// TestAppealRequestInfoLoop: request_info sends the appeal back to
// collection with a new deadline and the reason in the timeline; the new
// upload replaces the old one, whose object is deleted; the second round is
// approved, cooled down and unbound; the filed notice went out once.
func TestAppealRequestInfoLoop(t *testing.T) {
	env, m := newAppealEnv(t)
	states, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1, status: workflows.AppealCollecting},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
		{at: 3 * time.Hour, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview},
		{at: 4 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionRequestInfo, "the photo is blurred; upload a sharper one"), status: workflows.AppealCollecting},
		{at: 40 * time.Hour, update: workflows.UpdateAddDocument, arg: photo2, status: workflows.AppealCollecting}, // before the new deadline (4h+48h)
		{at: 50 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
		{at: 51 * time.Hour, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview},
		{at: 52 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), status: workflows.AppealCoolingDown},
		{at: 53 * time.Hour, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: "nobody"}, err: workflows.ErrTypeInvalidInput},
	})
	rq := states[4]
	if rq.Timeline != nil || rq.Applicant != (workflows.Applicant{}) {
		t.Fatalf("an update answered more than the compact state: %+v", rq)
	}
	if want := final.Timeline[4]; want.Note != "the photo is blurred; upload a sharper one" || want.Status != workflows.AppealCollecting {
		t.Fatalf("request_info in the timeline: %+v", want)
	}
	if got := rq.DocumentDeadline.Sub(workflow0(t, final)); got != 4*time.Hour+48*time.Hour {
		t.Fatalf("new deadline after %v", got)
	}
	if rq.Assignee != "" || len(rq.Approvals) != 0 {
		t.Fatalf("request_info kept the claim: %+v", rq)
	}
	if got := states[5].Documents[workflows.DocIDHoldingPhoto]; got.ObjectKey != docKey2 {
		t.Fatalf("replacement not recorded: %+v", got)
	}
	if got := states[8]; got.CoolDownUntil.Sub(workflow0(t, final)) != 52*time.Hour+72*time.Hour {
		t.Fatalf("cool-down until %v", got.CoolDownUntil)
	}
	if final.Status != workflows.AppealUnbound || !documentsGone(m, final) {
		t.Fatalf("final = %+v", final)
	}
	if len(m.deletedObjs) != 1 || m.deletedObjs[0] != docKey1 {
		t.Fatalf("replaced objects deleted: %v", m.deletedObjs)
	}
	if len(m.deleteDocs) != 1 || len(m.deleteDocs[0].Documents) != 2 {
		t.Fatalf("retention deleted %+v", m.deleteDocs)
	}
	if strings.Join(m.notices, ",") != "filed,approved,unbound" {
		t.Fatalf("notices %v", m.notices)
	}
	if len(m.unbinds) != 1 || m.unbinds[0].AccountID != acctID || m.unbinds[0].ApprovedAt.Sub(workflow0(t, final)) != 52*time.Hour || !m.unbinds[0].EffectsApart {
		t.Fatalf("unbinds %+v", m.unbinds)
	}
	// The sessions are revoked as an effect of its own after the unbind.
	if len(m.revokes) != 1 || m.revokes[0].AccountID != acctID {
		t.Fatalf("session revocations %+v", m.revokes)
	}
	want := "collecting_documents,pending_review,in_review,collecting_documents,pending_review,in_review,cooling_down,unbound"
	if got := strings.Join(m.statusList(), ","); got != want {
		t.Fatalf("mirrored %s", got)
	}
	if got := count(m.auditActions(), workflows.AuditAppealDecide+":ok"); got != 2 {
		t.Fatalf("decisions audited %d times", got)
	}
	for _, e := range m.audits {
		if e.Action == workflows.AuditAppealDecide && (e.Details["reviewer"] != r1.Reviewer || e.Actor != "reviewer:"+r1.Reviewer) {
			t.Fatalf("decision audit without the reviewer: %+v", e)
		}
	}
	if m.sa[workflows.SearchSubmittedAt] == nil || m.sa[workflows.SearchApplicantType] != workflows.ApplicantPersonal {
		t.Fatalf("search attributes %v", m.sa)
	}
}

func TestAppealFourEyes(t *testing.T) {
	env, m := newAppealEnv(t)
	p := appealPolicy
	p.FourEyes = true
	states, final := runAppeal(t, env, m, enterpriseAppeal(p), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: licence},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
		{at: 3 * time.Hour, update: workflows.UpdateClaim, arg: selfRev, err: workflows.ErrTypeSelfReview},
		{at: 3 * time.Hour, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview},
		{at: 4 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), status: workflows.AppealInReview},
		{at: 5 * time.Hour, update: workflows.UpdateClaim, arg: r1, err: workflows.ErrTypeSameReviewer},
		{at: 5 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), err: workflows.ErrTypeNotAssignee},
		{at: 5 * time.Hour, update: workflows.UpdateClaim, arg: selfRev, err: workflows.ErrTypeSelfReview},
		{at: 6 * time.Hour, update: workflows.UpdateClaim, arg: r2, status: workflows.AppealInReview},
		{at: 6 * time.Hour, update: workflows.UpdateDecide, arg: decide(selfRev, workflows.DecisionApprove, ""), err: workflows.ErrTypeSelfReview},
		{at: 7 * time.Hour, update: workflows.UpdateDecide, arg: decide(r2, workflows.DecisionApprove, ""), status: workflows.AppealCoolingDown},
	})
	first := states[6]
	if first.Assignee != "" || len(first.Approvals) != 1 || first.ApprovalsNeeded != 2 {
		t.Fatalf("after one approval: %+v", first)
	}
	if got := states[12]; len(got.Approvals) != 2 || got.Approvals[0].Reviewer == got.Approvals[1].Reviewer {
		t.Fatalf("approvals %+v", got.Approvals)
	}
	if final.Status != workflows.AppealUnbound || len(m.unbinds) != 1 {
		t.Fatalf("final = %+v, unbinds %d", final, len(m.unbinds))
	}
	if got := count(m.auditActions(), workflows.AuditAppealDecide+":ok"); got != 2 {
		t.Fatalf("decisions audited %d times", got)
	}
}

func TestAppealSLABreach(t *testing.T) {
	env, m := newAppealEnv(t)
	beforeSLA := queryAt(t, env, 2*time.Hour+24*time.Hour-time.Minute)
	afterSLA := queryAt(t, env, 2*time.Hour+24*time.Hour+time.Minute)
	_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
		{at: 30 * time.Hour, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview},
		{at: 80 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionReject, "documents forged"), status: workflows.AppealRejected},
	})
	if beforeSLA.SLABreached || !afterSLA.SLABreached {
		t.Fatalf("breached before %v, after %v", beforeSLA.SLABreached, afterSLA.SLABreached)
	}
	if !final.SLABreached || final.Status != workflows.AppealRejected {
		t.Fatalf("final = %+v", final)
	}
	if len(m.leads) != 1 || m.leads[0].AppealID != appealID || m.leads[0].Status != workflows.AppealPending {
		t.Fatalf("leads notified %+v", m.leads)
	}
	if got := count(m.auditActions(), workflows.AuditAppealSLABreached+":ok"); got != 1 {
		t.Fatalf("breach audited %d times", got)
	}
	if m.sa[workflows.SearchSLABreached] != true {
		t.Fatalf("search attributes %v", m.sa)
	}
}

func TestAppealOwnerCancelsInCooldown(t *testing.T) {
	env, m := newAppealEnv(t)
	_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}},
		{at: 3 * time.Hour, update: workflows.UpdateClaim, arg: r1},
		{at: 4 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), status: workflows.AppealCoolingDown},
		{at: 50 * time.Hour, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByOwner}, status: workflows.AppealCancelled},
		{at: 51 * time.Hour, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByOwner}, err: workflows.ErrTypeAppealWrongState},
	})
	if final.Status != workflows.AppealCancelled || m.calls.get("unbind") != 0 {
		t.Fatalf("final = %+v, unbind calls %d", final, m.calls.get("unbind"))
	}
	if got := final.Timeline[len(final.Timeline)-2]; got.Note != "cancelled by the account owner" {
		t.Fatalf("timeline %+v", got)
	}
	if strings.Join(m.notices, ",") != "filed,approved,cancelled" {
		t.Fatalf("notices %v", m.notices)
	}
	for _, e := range m.audits {
		if e.Action == workflows.AuditAppealCancel && e.Details["by"] != workflows.CancelByOwner {
			t.Fatalf("cancel audit %+v", e)
		}
	}
}

func TestAppealDeviceUsedInCooldown(t *testing.T) {
	env, m := newAppealEnv(t)
	used := workflows.DeviceUsedSignal{DeviceID: "dev-1"}
	_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate},
		{at: 30 * time.Minute, signal: true, arg: used}, // not in cool-down: ignored
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}},
		{at: 3 * time.Hour, update: workflows.UpdateClaim, arg: r1},
		{at: 3 * time.Hour, signal: true, arg: used}, // in review: ignored
		{at: 4 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), status: workflows.AppealCoolingDown},
		{at: 10 * time.Hour, signal: true, arg: used},
		{at: 11 * time.Hour, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByApplicant}, err: workflows.ErrTypeAppealWrongState},
	})
	if final.Status != workflows.AppealCancelled || m.calls.get("unbind") != 0 {
		t.Fatalf("final = %+v, unbind calls %d", final, m.calls.get("unbind"))
	}
	notes := 0
	for _, e := range final.Timeline {
		if e.Note == "the MFA device was used, so it is not lost" {
			notes++
			if e.At.Sub(workflow0(t, final)) != 10*time.Hour {
				t.Fatalf("cancelled at %v", e.At)
			}
		}
	}
	if notes != 1 {
		t.Fatalf("timeline %+v", final.Timeline)
	}
	if strings.Join(m.notices, ",") != "filed,approved,device_used" {
		t.Fatalf("notices %v", m.notices)
	}
	if got := count(m.auditActions(), workflows.AuditAppealCancel+":ok"); got != 1 {
		t.Fatalf("cancel audited %d times", got)
	}
}

// TestAppealUnbindRetried: the first UnbindAll attempt fails (retryable);
// the retry succeeds and the appeal is unbound once. With a cool-down of 0
// the unbind follows the approval at once.
func TestAppealUnbindRetried(t *testing.T) {
	env, m := newAppealEnv(t)
	m.unbind = func(n int) error {
		if n == 1 {
			return temporal.NewApplicationError("store down", "StoreDown")
		}
		return nil
	}
	p := appealPolicy
	p.Cooldown = 0
	_, final := runAppeal(t, env, m, personalAppeal(p), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}},
		{at: 3 * time.Hour, update: workflows.UpdateClaim, arg: r1},
		{at: 4 * time.Hour, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), status: workflows.AppealCoolingDown},
		{at: 5 * time.Hour, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByOwner}, err: workflows.ErrTypeAppealWrongState},
	})
	if final.Status != workflows.AppealUnbound {
		t.Fatalf("final = %+v", final)
	}
	if m.calls.get("unbind") != 2 || len(m.unbinds) != 1 {
		t.Fatalf("UnbindAll called %d times, succeeded %d", m.calls.get("unbind"), len(m.unbinds))
	}
	if got := count(m.statusList(), workflows.AppealUnbound); got != 1 {
		t.Fatalf("unbound mirrored %d times", got)
	}
	unbound := 0
	for _, e := range final.Timeline {
		if e.Status == workflows.AppealUnbound && strings.Contains(e.Note, "unbound") {
			unbound++
			if d := e.At.Sub(workflow0(t, final)); d < 4*time.Hour || d > 4*time.Hour+time.Minute {
				t.Fatalf("unbound at %v", d)
			}
		}
	}
	if unbound != 1 {
		t.Fatalf("timeline %+v", final.Timeline)
	}
}

// TestAppealRetention: a closed appeal keeps answering for ClosedGrace,
// then hands every document it ever held to a DocumentRetention workflow
// that deletes them at the end of the retention period, and ends.
func TestAppealRetention(t *testing.T) {
	env, m := newAppealEnv(t)
	const cancelAt = 5 * time.Hour
	before := queryAt(t, env, cancelAt+workflows.ClosedGrace-time.Hour)
	_, final := runAppeal(t, env, m, enterpriseAppeal(appealPolicy), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: licence},
		{at: 2 * time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 3 * time.Hour, update: workflows.UpdateAddDocument, arg: photo2},
		{at: cancelAt, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByApplicant}, status: workflows.AppealCancelled},
		{at: cancelAt + time.Hour, update: workflows.UpdateAddDocument, arg: photo1, err: workflows.ErrTypeAppealWrongState},
	})
	if before.Status != workflows.AppealCancelled || len(before.Documents) != 2 {
		t.Fatalf("during the grace: %+v", before)
	}
	if final.Status != workflows.AppealCancelled || final.DocumentsDeleted {
		t.Fatalf("final = %+v", final)
	}
	if last := final.Timeline[len(final.Timeline)-1]; !strings.HasPrefix(last.Note, "documents kept until") || last.At.Sub(final.ClosedAt) != workflows.ClosedGrace {
		t.Fatalf("hand-off in the timeline: %+v (closed %v)", last, final.ClosedAt)
	}
	if len(m.retentions) != 1 || !m.retentions[0].DeleteAt.Equal(final.ClosedAt.Add(appealPolicy.Retention)) || m.retentions[0].AppealID != final.AppealID {
		t.Fatalf("retention hand-offs %+v", m.retentions)
	}
	if len(m.deleteDocs) != 1 {
		t.Fatalf("documents handed off %d times", len(m.deleteDocs))
	}
	var keys []string
	for _, d := range m.deleteDocs[0].Documents {
		keys = append(keys, d.ObjectKey)
	}
	if strings.Join(keys, ",") != licKey+","+docKey1+","+docKey2 {
		t.Fatalf("deleted %v", keys)
	}
	if len(m.deletedObjs) != 1 || m.deletedObjs[0] != docKey1 {
		t.Fatalf("replaced objects deleted: %v", m.deletedObjs)
	}
	if strings.Join(m.notices, ",") != "cancelled" {
		t.Fatalf("notices %v", m.notices)
	}
}

// photoN is the n-th upload of the ID photo, under a key of its own.
func photoN(n int) workflows.AddDocumentInput {
	return doc(workflows.DocIDHoldingPhoto, fmt.Sprintf("appeals/%s/id_holding_photo-n%d", appealID, n), hashA)
}

// TestAppealBounds: the 11th upload of one type and the 31st update are
// refused by the validators (so they never land in the history), a refused
// one is not counted, and a cancel is still accepted past the bound.
func TestAppealBounds(t *testing.T) {
	env, m := newAppealEnv(t)
	steps := []appealStep{{at: 0, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting}}
	for i := range workflows.MaxUploadsPerType {
		steps = append(steps, appealStep{at: time.Minute, update: workflows.UpdateAddDocument, arg: photoN(i), status: workflows.AppealCollecting})
	}
	steps = append(steps,
		appealStep{at: 2 * time.Minute, update: workflows.UpdateAddDocument, arg: photoN(99), err: workflows.ErrTypeTooManyUploads},
		appealStep{at: 3 * time.Minute, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
	)
	// 12 updates so far; repeated claims (accepted, answered the same) take
	// the appeal to the bound.
	for range workflows.MaxAppealUpdates - 12 {
		steps = append(steps, appealStep{at: 4 * time.Minute, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview})
	}
	steps = append(steps,
		appealStep{at: 5 * time.Minute, update: workflows.UpdateClaim, arg: r1, err: workflows.ErrTypeTooManyUpdates},
		appealStep{at: 5 * time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), err: workflows.ErrTypeTooManyUpdates},
		// Checks of the update itself come first: a wrong one says why.
		appealStep{at: 5 * time.Minute, update: workflows.UpdateDecide, arg: decide(r2, workflows.DecisionApprove, ""), err: workflows.ErrTypeNotAssignee},
		appealStep{at: 6 * time.Minute, update: workflows.UpdateCancel, arg: workflows.CancelInput{By: workflows.CancelByOwner}, status: workflows.AppealCancelled},
	)
	states, final := runAppeal(t, env, m, personalAppeal(appealPolicy), steps)
	if got := states[workflows.MaxUploadsPerType]; got.Uploads[workflows.DocIDHoldingPhoto] != workflows.MaxUploadsPerType || got.Updates != 1+workflows.MaxUploadsPerType {
		t.Fatalf("after the uploads: updates %d, uploads %v", got.Updates, got.Uploads)
	}
	if final.Updates != workflows.MaxAppealUpdates+1 || final.Uploads[workflows.DocIDHoldingPhoto] != workflows.MaxUploadsPerType {
		t.Fatalf("final: updates %d, uploads %v", final.Updates, final.Uploads)
	}
	if got := final.Documents[workflows.DocIDHoldingPhoto].ObjectKey; got != photoN(workflows.MaxUploadsPerType-1).Document.ObjectKey {
		t.Fatalf("the refused upload was recorded: %s", got)
	}
	if got := count(m.auditActions(), workflows.AuditAppealDocument+":ok"); got != workflows.MaxUploadsPerType {
		t.Fatalf("uploads audited %d times", got)
	}
	for i, st := range states {
		if st.Timeline != nil || st.Applicant != (workflows.Applicant{}) {
			t.Fatalf("step %d answered more than the compact state", i)
		}
	}
	if len(final.Timeline) == 0 || final.Applicant.IDNumber != piiID {
		t.Fatal("the workflow's result lost the timeline or the applicant")
	}
}

// TestAppealReviewReserve: after request_info rounds a submit that would
// leave fewer than ReviewReserve updates for the review is refused, and the
// appeal then expires at its deadline instead of waiting in the queue with
// no update left to claim it.
func TestAppealReviewReserve(t *testing.T) {
	env, m := newAppealEnv(t)
	steps := []appealStep{{at: 0, update: workflows.UpdateAppealCreate, status: workflows.AppealCollecting}}
	for i := range workflows.MaxUploadsPerType {
		steps = append(steps, appealStep{at: time.Minute, update: workflows.UpdateAddDocument, arg: photoN(i)})
	}
	// 11 updates; each round is submit, claim, request_info.
	at := 2 * time.Minute
	updates := 11
	for updates+1 <= workflows.MaxAppealUpdates-workflows.ReviewReserve {
		steps = append(steps,
			appealStep{at: at, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, status: workflows.AppealPending},
			appealStep{at: at + time.Minute, update: workflows.UpdateClaim, arg: r1, status: workflows.AppealInReview},
			appealStep{at: at + 2*time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionRequestInfo, "a sharper photo"), status: workflows.AppealCollecting},
		)
		at += time.Hour
		updates += 3
	}
	steps = append(steps, appealStep{at: at, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}, err: workflows.ErrTypeTooManyUpdates})
	_, final := runAppeal(t, env, m, personalAppeal(appealPolicy), steps)
	if final.Status != workflows.AppealExpired || final.Updates != updates {
		t.Fatalf("final: status %s, updates %d (want %d)", final.Status, final.Updates, updates)
	}
}

// TestAppealNoticeOutageHoldsNothing: with the notifier down, the status
// mirror and the unbind keep their times, and the notices go out when it
// is back (effect lanes, SPEC §6d). (The test environment stops retrying
// an activity after 10 attempts, about 4 minutes here; production retries
// without end, so the outage simulated is 3 minutes.)
func TestAppealNoticeOutageHoldsNothing(t *testing.T) {
	env, m := newAppealEnv(t)
	var start time.Time
	m.notify = func(int) error {
		if d := env.Now().Sub(start); d >= 2*time.Hour && d < 2*time.Hour+3*time.Minute {
			return temporal.NewApplicationError("notifier down", "Unavailable")
		}
		return nil
	}
	env.RegisterDelayedCallback(func() {}, 0)
	start = env.Now()
	p := appealPolicy
	p.Cooldown = 0
	_, final := runAppeal(t, env, m, personalAppeal(p), []appealStep{
		{at: 0, update: workflows.UpdateAppealCreate},
		{at: time.Hour, update: workflows.UpdateAddDocument, arg: photo1},
		{at: 2 * time.Hour, update: workflows.UpdateSubmit, arg: workflows.SubmitInput{}},
		{at: 2*time.Hour + time.Minute, update: workflows.UpdateClaim, arg: r1},
		{at: 2*time.Hour + 2*time.Minute, update: workflows.UpdateDecide, arg: decide(r1, workflows.DecisionApprove, ""), status: workflows.AppealCoolingDown},
	})
	if final.Status != workflows.AppealUnbound || !documentsGone(m, final) {
		t.Fatalf("final = %+v", final)
	}
	s0 := workflow0(t, final)
	m.mu.Lock()
	defer m.mu.Unlock()
	for status, want := range map[string]time.Duration{
		workflows.AppealPending: 2 * time.Hour, workflows.AppealInReview: 2*time.Hour + time.Minute,
		workflows.AppealCoolingDown: 2*time.Hour + 2*time.Minute, workflows.AppealUnbound: 2*time.Hour + 2*time.Minute,
	} {
		at, ok := m.statusAt[status]
		if !ok {
			t.Fatalf("%s never mirrored", status)
		}
		if d := at.Sub(s0); d < want || d > want+30*time.Second {
			t.Errorf("%s mirrored at %v, want about %v: the failing notice held it back", status, d, want)
		}
	}
	if strings.Join(m.notices, ",") != "filed,approved,unbound" {
		t.Errorf("notices after the outage: %v", m.notices)
	}
	if m.calls.get("notify") <= 3 {
		t.Errorf("the notifier was tried %d times: the outage was not simulated", m.calls.get("notify"))
	}
}

// documentsGone: the appeal deleted its documents itself (a retention
// within ClosedGrace) or handed them, once, to DocumentRetention with the
// deletion due at the end of the retention period.
func documentsGone(m *appealMocks, final workflows.AppealState) bool {
	if final.DocumentsDeleted {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.retentions) == 1 && m.retentions[0].DeleteAt.Equal(final.ClosedAt.Add(appealPolicy.Retention))
}

// TestDocumentRetention: the retention workflow deletes the documents at
// their time, not before, and retries the deletion until it works.
func TestDocumentRetention(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := env.Now()
	deleteAt := start.Add(30 * 24 * time.Hour)
	var calls int
	var at time.Time
	env.OnActivity(a.DeleteDocuments, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.DeleteDocumentsInput) (workflows.DeleteDocumentsResult, error) {
			calls++
			if calls == 1 {
				return workflows.DeleteDocumentsResult{}, temporal.NewApplicationError("object store down", "Unavailable")
			}
			at = env.Now()
			return workflows.DeleteDocumentsResult{Deleted: len(in.Documents)}, nil
		})
	env.ExecuteWorkflow(workflows.DocumentRetention, workflows.RetentionInput{AppealID: "apl_r", AccountID: "acct-r",
		Documents: []workflows.Document{{Type: workflows.DocIDHoldingPhoto, ObjectKey: "appeals/apl_r/x"}}, DeleteAt: deleteAt})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var out workflows.RetentionResult
	if err := env.GetWorkflowResult(&out); err != nil || out.Deleted != 1 {
		t.Fatalf("result %+v, %v", out, err)
	}
	if calls != 2 || at.Before(deleteAt) || at.After(deleteAt.Add(time.Minute)) {
		t.Fatalf("deleted on try %d at %v, due %v", calls, at, deleteAt)
	}
}

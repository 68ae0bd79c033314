package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

var a *activities.Activities

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// workflowOptions are the start options the console uses.
func workflowOptions(account string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.BindWorkflowID(account), TaskQueue: workflows.TaskQueue}
}

// step is one update sent to the workflow at a point of its clock, with
// what it should answer.
type step struct {
	at      time.Duration
	update  string
	arg     any    // nil for UpdateBegin
	reject  string // the validator's error type, or ""
	errType string // the handler's error type, or ""
	status  string // the status answered, or ""
}

type answer struct {
	state    workflows.BindingState
	err      error
	rejected error
	done     bool
}

// run starts BindDevice with in, sends steps and returns the answers and
// the final state.
func run(t *testing.T, env *testsuite.TestWorkflowEnvironment, in workflows.BindDeviceInput, steps []step) ([]answer, workflows.BindingState) {
	t.Helper()
	answers := make([]answer, len(steps))
	for i, s := range steps {
		env.RegisterDelayedCallback(func() {
			var args []any
			if s.arg != nil {
				args = append(args, s.arg)
			}
			env.UpdateWorkflow(s.update, fmt.Sprintf("u%d", i), &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { answers[i] = answer{rejected: err, done: true} },
				OnComplete: func(res any, err error) {
					st, _ := res.(workflows.BindingState)
					answers[i] = answer{state: st, err: err, done: true}
				},
			}, args...)
		}, s.at)
	}
	env.ExecuteWorkflow(workflows.BindDevice, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow error: %v", err)
	}
	var final workflows.BindingState
	if err := env.GetWorkflowResult(&final); err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		got := answers[i]
		if !got.done {
			t.Errorf("step %d (%s): no answer", i, s.update)
			continue
		}
		if s.reject != "" || got.rejected != nil {
			if errType(got.rejected) != s.reject {
				t.Errorf("step %d (%s): rejected %v, want %q", i, s.update, got.rejected, s.reject)
			}
			continue
		}
		if errType(got.err) != s.errType {
			t.Errorf("step %d (%s): error %v, want %q", i, s.update, got.err, s.errType)
		}
		if s.status != "" && got.state.Status != s.status {
			t.Errorf("step %d (%s): status %q, want %q", i, s.update, got.state.Status, s.status)
		}
	}
	return answers, final
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func bizErr(typ string, details ...any) error {
	return temporal.NewNonRetryableApplicationError("test: "+typ, typ, nil, details...)
}

// calls counts activity calls by name.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
	return c.n[name]
}

func (c *calls) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

// mocks sets up happy-path mocks; confirm and checkSMS may override the
// results by call number (1-based).
type mocks struct {
	sendErr  func() error
	checkSMS func(n int) (workflows.CheckBindingSMSResult, error)
	confirm  func(n int) (workflows.ConfirmResult, error)
	expired  []workflows.ExpireBindingInput
	calls    calls
}

func (m *mocks) install(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(a.SendBindingSMS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.SendBindingSMSInput) (workflows.SendBindingSMSResult, error) {
			m.calls.add("send")
			if m.sendErr != nil {
				if err := m.sendErr(); err != nil {
					return workflows.SendBindingSMSResult{}, err
				}
			}
			return workflows.SendBindingSMSResult{ChallengeID: "sms-1", ExpiresAt: time.Now().Add(mfa.SMSCodeTTL)}, nil
		}).Maybe()
	env.OnActivity(a.CheckBindingSMS, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.CheckBindingSMSInput) (workflows.CheckBindingSMSResult, error) {
			n := m.calls.add("check")
			if m.checkSMS != nil {
				return m.checkSMS(n)
			}
			return workflows.CheckBindingSMSResult{TriesLeft: 4}, nil
		}).Maybe()
	env.OnActivity(a.CreatePendingDevice, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.CreatePendingDeviceInput) (workflows.CreatePendingDeviceResult, error) {
			m.calls.add("create")
			if in.DeviceType == workflows.DeviceHardware {
				return workflows.CreatePendingDeviceResult{}, nil
			}
			return workflows.CreatePendingDeviceResult{DeviceID: "dev-" + in.BindingID}, nil
		}).Maybe()
	confirm := func(id string) (workflows.ConfirmResult, error) {
		n := m.calls.add("confirm")
		if m.confirm != nil {
			return m.confirm(n)
		}
		return workflows.ConfirmResult{DeviceID: id, Protection: workflows.Protection{Login: true}}, nil
	}
	env.OnActivity(a.ConfirmVirtual, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.ConfirmVirtualInput) (workflows.ConfirmResult, error) {
			return confirm(in.DeviceID)
		}).Maybe()
	env.OnActivity(a.ConfirmHardware, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.ConfirmHardwareInput) (workflows.ConfirmResult, error) {
			return confirm(activities.BindDeviceID(in.BindingID, in.Serial))
		}).Maybe()
	env.OnActivity(a.ExpireBinding, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in workflows.ExpireBindingInput) error {
			m.calls.add("expire")
			m.expired = append(m.expired, in)
			return nil
		}).Maybe()
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(workflowOptions("acct-1"))
	t.Cleanup(func() { env.AssertExpectations(t) })
	return env
}

var (
	virtual  = workflows.BindDeviceInput{AccountID: "acct-1", DeviceType: workflows.DeviceVirtual, BindingID: "b1", RequestedBy: "console"}
	hardware = workflows.BindDeviceInput{AccountID: "acct-1", DeviceType: workflows.DeviceHardware, BindingID: "b1", RequestedBy: "console"}
	smsOK    = workflows.BindSMSCodeInput{BindingID: "b1", Code: "123456"}
	codesOK  = workflows.BindConfirmInput{BindingID: "b1", Code1: "123456", Code2: "654321", Protection: workflows.Protection{Login: true}}
	cardOK   = workflows.BindConfirmInput{BindingID: "b1", Serial: "SN-0001", Code: "12345678"}
)

func TestBindVirtual(t *testing.T) {
	env := newEnv(t)
	m := &mocks{}
	m.install(env)
	var queried workflows.BindingState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryBindingStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		_ = v.Get(&queried)
	}, 90*time.Second)
	answers, final := run(t, env, virtual, []step{
		{at: 0, update: workflows.UpdateBegin, status: workflows.BindingAwaitingSMSCode},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK, status: workflows.BindingAwaitingDeviceCodes},
		{at: 2 * time.Minute, update: workflows.UpdateConfirm, arg: codesOK, status: workflows.BindingBound},
	})
	if got := answers[0].state; got.ExpiresAt.IsZero() || got.BindingID != "b1" || got.SMSTriesLeft != 5 {
		t.Fatalf("begin answered %+v", got)
	}
	if got := answers[1].state; got.DeviceID != "dev-b1" {
		t.Fatalf("sms answered %+v", got)
	}
	if queried.Status != workflows.BindingAwaitingDeviceCodes || queried.DeviceID != "dev-b1" {
		t.Fatalf("query = %+v", queried)
	}
	if final.Status != workflows.BindingBound || final.DeviceID != "dev-b1" || !final.Protection.Login {
		t.Fatalf("final = %+v", final)
	}
	if m.calls.get("expire") != 0 {
		t.Fatal("ExpireBinding ran for a bound device")
	}
}

func TestBindSMSWrongFiveTimes(t *testing.T) {
	env := newEnv(t)
	m := &mocks{checkSMS: func(n int) (workflows.CheckBindingSMSResult, error) {
		if n < 5 {
			return workflows.CheckBindingSMSResult{}, bizErr(workflows.ErrTypeInvalidCode, 5-n)
		}
		return workflows.CheckBindingSMSResult{}, bizErr(workflows.ErrTypeSMSExhausted)
	}}
	m.install(env)
	steps := []step{{at: 0, update: workflows.UpdateBegin}}
	for i := 1; i <= 5; i++ {
		s := step{at: time.Duration(i) * time.Second, update: workflows.UpdateSMSCode, arg: smsOK, errType: workflows.ErrTypeInvalidCode, status: workflows.BindingAwaitingSMSCode}
		if i == 5 {
			s.errType, s.status = workflows.ErrTypeSMSExhausted, workflows.BindingFailed
		}
		steps = append(steps, s)
	}
	answers, final := run(t, env, virtual, steps)
	for i := 1; i <= 4; i++ {
		if got := answers[i].state.SMSTriesLeft; got != 5-i {
			t.Errorf("after wrong code %d: tries left %d, want %d", i, got, 5-i)
		}
		var appErr *temporal.ApplicationError
		var left int
		if !errors.As(answers[i].err, &appErr) || appErr.Details(&left) != nil || left != 5-i {
			t.Errorf("wrong code %d: details %d, want %d", i, left, 5-i)
		}
	}
	if final.Status != workflows.BindingFailed {
		t.Fatalf("final = %s, want failed", final.Status)
	}
	if len(m.expired) != 1 || m.expired[0].Outcome != workflows.BindingFailed {
		t.Fatalf("cleanup = %+v, want one with outcome failed", m.expired)
	}
	if m.calls.get("create") != 0 {
		t.Fatal("a device was created")
	}
}

func TestBindExpiresMidway(t *testing.T) {
	env := newEnv(t)
	m := &mocks{}
	m.install(env)
	_, final := run(t, env, virtual, []step{
		{at: 0, update: workflows.UpdateBegin},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK, status: workflows.BindingAwaitingDeviceCodes},
	})
	if final.Status != workflows.BindingExpired {
		t.Fatalf("final = %s, want expired", final.Status)
	}
	if len(m.expired) != 1 || m.expired[0].DeviceID != "dev-b1" || m.expired[0].Outcome != workflows.BindingExpired || m.expired[0].BindingID != "b1" {
		t.Fatalf("ExpireBinding calls = %+v", m.expired)
	}
	if got := env.Now().Sub(time.Time{}); got < 0 {
		t.Fatal("clock went back")
	}
}

func TestBindHardwareSerialUnknownThenRight(t *testing.T) {
	env := newEnv(t)
	m := &mocks{confirm: func(n int) (workflows.ConfirmResult, error) {
		if n == 1 {
			return workflows.ConfirmResult{}, bizErr(workflows.ErrTypeSerialUnknown)
		}
		return workflows.ConfirmResult{DeviceID: "dev-b1-SN-0001", ProtectionUnchanged: true}, nil
	}}
	m.install(env)
	wrongSerial := cardOK
	wrongSerial.Serial = "SN-9999"
	_, final := run(t, env, hardware, []step{
		{at: 0, update: workflows.UpdateBegin},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK, status: workflows.BindingAwaitingHardwareToken},
		{at: 2 * time.Minute, update: workflows.UpdateConfirm, arg: wrongSerial, errType: workflows.ErrTypeSerialUnknown, status: workflows.BindingAwaitingHardwareToken},
		{at: 3 * time.Minute, update: workflows.UpdateConfirm, arg: cardOK, status: workflows.BindingBound},
	})
	if final.Status != workflows.BindingBound || final.DeviceID != "dev-b1-SN-0001" || !final.ProtectionUnchanged {
		t.Fatalf("final = %+v", final)
	}
}

func TestBindHardwareSerialBoundElsewhere(t *testing.T) {
	env := newEnv(t)
	m := &mocks{confirm: func(int) (workflows.ConfirmResult, error) {
		return workflows.ConfirmResult{}, bizErr(workflows.ErrTypeSerialUnavailable)
	}}
	m.install(env)
	_, final := run(t, env, hardware, []step{
		{at: 0, update: workflows.UpdateBegin},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK},
		{at: 2 * time.Minute, update: workflows.UpdateConfirm, arg: cardOK, errType: workflows.ErrTypeSerialUnavailable, status: workflows.BindingAwaitingHardwareToken},
	})
	if final.Status != workflows.BindingExpired || len(m.expired) != 1 {
		t.Fatalf("final = %s, cleanups %d; want expired after one cleanup", final.Status, len(m.expired))
	}
}

func TestBindCodesNotConsecutiveThenRight(t *testing.T) {
	env := newEnv(t)
	m := &mocks{confirm: func(n int) (workflows.ConfirmResult, error) {
		switch n {
		case 1:
			return workflows.ConfirmResult{}, bizErr(workflows.ErrTypeNotConsecutive)
		case 2:
			return workflows.ConfirmResult{}, bizErr(workflows.ErrTypeLocked, 60)
		}
		return workflows.ConfirmResult{DeviceID: "dev-b1"}, nil
	}}
	m.install(env)
	answers, final := run(t, env, virtual, []step{
		{at: 0, update: workflows.UpdateBegin},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK},
		{at: 2 * time.Minute, update: workflows.UpdateConfirm, arg: codesOK, errType: workflows.ErrTypeNotConsecutive, status: workflows.BindingAwaitingDeviceCodes},
		{at: 3 * time.Minute, update: workflows.UpdateConfirm, arg: codesOK, errType: workflows.ErrTypeLocked, status: workflows.BindingAwaitingDeviceCodes},
		{at: 5 * time.Minute, update: workflows.UpdateConfirm, arg: codesOK, status: workflows.BindingBound},
	})
	var appErr *temporal.ApplicationError
	var secs int
	if !errors.As(answers[3].err, &appErr) || appErr.Details(&secs) != nil || secs != 60 {
		t.Fatalf("locked answer %v: retry after %d, want 60", answers[3].err, secs)
	}
	if final.Status != workflows.BindingBound {
		t.Fatalf("final = %s", final.Status)
	}
}

// TestBindValidators: malformed input and updates out of order are
// rejected by the validators and never reach an activity.
func TestBindValidators(t *testing.T) {
	tests := []struct {
		name  string
		in    workflows.BindDeviceInput
		steps []step
	}{
		{"sms code malformed", virtual, []step{
			{at: 0, update: workflows.UpdateBegin},
			{at: time.Second, update: workflows.UpdateSMSCode, arg: workflows.BindSMSCodeInput{BindingID: "b1", Code: "12345"}, reject: workflows.ErrTypeMalformed},
			{at: 2 * time.Second, update: workflows.UpdateSMSCode, arg: workflows.BindSMSCodeInput{BindingID: "b1", Code: "1234567"}, reject: workflows.ErrTypeMalformed},
			{at: 3 * time.Second, update: workflows.UpdateSMSCode, arg: workflows.BindSMSCodeInput{BindingID: "b1", Code: "12a456"}, reject: workflows.ErrTypeMalformed},
			{at: 4 * time.Second, update: workflows.UpdateSMSCode, arg: workflows.BindSMSCodeInput{BindingID: "b1", Code: "１２３４５６"}, reject: workflows.ErrTypeMalformed},
		}},
		{"another binding", virtual, []step{
			{at: 0, update: workflows.UpdateBegin},
			{at: time.Second, update: workflows.UpdateSMSCode, arg: workflows.BindSMSCodeInput{BindingID: "b2", Code: "123456"}, reject: workflows.ErrTypeWrongState},
			{at: 2 * time.Second, update: workflows.UpdateSMSCode, arg: workflows.BindSMSCodeInput{Code: "123456"}, reject: workflows.ErrTypeWrongState},
			{at: 3 * time.Second, update: workflows.UpdateSMSCode, arg: smsOK},
			{at: 4 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b2", Code1: "123456", Code2: "654321"}, reject: workflows.ErrTypeWrongState},
		}},
		{"confirm before sms", virtual, []step{
			{at: 0, update: workflows.UpdateBegin},
			{at: time.Second, update: workflows.UpdateConfirm, arg: codesOK, reject: workflows.ErrTypeWrongState},
		}},
		{"sms code before begin", virtual, []step{
			{at: 0, update: workflows.UpdateSMSCode, arg: smsOK, reject: workflows.ErrTypeWrongState},
		}},
		{"virtual codes malformed", virtual, []step{
			{at: 0, update: workflows.UpdateBegin},
			{at: time.Second, update: workflows.UpdateSMSCode, arg: smsOK},
			{at: 2 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b1", Code1: "123456"}, reject: workflows.ErrTypeMalformed},
			{at: 3 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b1", Code1: "1234567", Code2: "123456"}, reject: workflows.ErrTypeMalformed},
			{at: 4 * time.Second, update: workflows.UpdateSMSCode, arg: smsOK, reject: workflows.ErrTypeWrongState},
		}},
		{"hardware input malformed", hardware, []step{
			{at: 0, update: workflows.UpdateBegin},
			{at: time.Second, update: workflows.UpdateSMSCode, arg: smsOK},
			{at: 2 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b1", Serial: "SN1", Code: "123456"}, reject: workflows.ErrTypeMalformed},
			{at: 3 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b1", Serial: "SN 0001", Code: "123456"}, reject: workflows.ErrTypeMalformed},
			{at: 4 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b1", Serial: "SN-0001", Code: "1234567"}, reject: workflows.ErrTypeMalformed},
			{at: 5 * time.Second, update: workflows.UpdateConfirm, arg: workflows.BindConfirmInput{BindingID: "b1", Serial: "SN-0001"}, reject: workflows.ErrTypeMalformed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			m := &mocks{}
			m.install(env)
			run(t, env, tt.in, tt.steps)
			checks := 0
			for _, s := range tt.steps {
				if s.update == workflows.UpdateSMSCode && s.reject == "" {
					checks++
				}
			}
			if got := m.calls.get("check"); got != checks {
				t.Errorf("CheckBindingSMS ran %d times, want %d", got, checks)
			}
			if got := m.calls.get("confirm"); got != 0 {
				t.Errorf("a confirm activity ran %d times, want 0", got)
			}
		})
	}
}

// TestBindUpdatesSerialized: two confirms sent at once never run their
// activities concurrently; the second finds the binding bound.
func TestBindUpdatesSerialized(t *testing.T) {
	env := newEnv(t)
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	m := &mocks{confirm: func(int) (workflows.ConfirmResult, error) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return workflows.ConfirmResult{DeviceID: "dev-b1"}, nil
	}}
	m.install(env)
	_, final := run(t, env, virtual, []step{
		{at: 0, update: workflows.UpdateBegin},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK},
		{at: 2 * time.Minute, update: workflows.UpdateConfirm, arg: codesOK, status: workflows.BindingBound},
		{at: 2 * time.Minute, update: workflows.UpdateConfirm, arg: codesOK, errType: workflows.ErrTypeWrongState},
	})
	if maxInFlight != 1 || m.calls.get("confirm") != 1 {
		t.Fatalf("confirm activities: %d ran, at most %d at once; want 1 and 1", m.calls.get("confirm"), maxInFlight)
	}
	if final.Status != workflows.BindingBound {
		t.Fatalf("final = %s", final.Status)
	}
}

func TestBindBeginRefusals(t *testing.T) {
	for _, typ := range []string{workflows.ErrTypeNoPhone, workflows.ErrTypeNoAccount} {
		t.Run(typ, func(t *testing.T) {
			env := newEnv(t)
			env.OnActivity(a.SendBindingSMS, mock.Anything, mock.Anything).Return(workflows.SendBindingSMSResult{}, bizErr(typ))
			env.OnActivity(a.ExpireBinding, mock.Anything, mock.Anything).Return(nil)
			_, final := run(t, env, virtual, []step{{at: 0, update: workflows.UpdateBegin, errType: typ}})
			if final.Status != workflows.BindingFailed {
				t.Fatalf("final = %s, want failed", final.Status)
			}
		})
	}
	t.Run("store down", func(t *testing.T) {
		env := newEnv(t)
		var down sync.Mutex
		storeDown := true
		m := &mocks{sendErr: func() error {
			down.Lock()
			defer down.Unlock()
			if storeDown {
				return fmt.Errorf("send: %w", store.ErrUnavailable)
			}
			return nil
		}}
		m.install(env)
		env.RegisterDelayedCallback(func() { down.Lock(); storeDown = false; down.Unlock() }, 3*time.Minute)
		// The first begin gives up after the activity's schedule-to-close
		// timeout; a second begin sends the code.
		_, final := run(t, env, virtual, []step{
			{at: 0, update: workflows.UpdateBegin, errType: workflows.ErrTypeUnavailable},
			{at: 5 * time.Minute, update: workflows.UpdateBegin, status: workflows.BindingAwaitingSMSCode},
			{at: 6 * time.Minute, update: workflows.UpdateSMSCode, arg: smsOK, status: workflows.BindingAwaitingDeviceCodes},
		})
		if final.Status != workflows.BindingExpired {
			t.Fatalf("final = %s", final.Status)
		}
	})
}

// crashingStore does the real work of one method, then fails it once with
// a retryable error, as a worker that dies before reporting would.
type crashingStore struct {
	store.Store
	crashIn string // "ActivateDevice" or "AppendAudit"

	mu          sync.Mutex
	crashed     bool
	activations int
}

func (s *crashingStore) crash(method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashIn == method && !s.crashed {
		s.crashed = true
		return true
	}
	return false
}

func (s *crashingStore) ActivateDevice(ctx context.Context, id string, at time.Time) (store.Device, error) {
	d, err := s.Store.ActivateDevice(ctx, id, at)
	if err == nil {
		s.mu.Lock()
		s.activations++
		s.mu.Unlock()
	}
	if err == nil && s.crash("ActivateDevice") {
		return store.Device{}, fmt.Errorf("worker lost: %w", store.ErrUnavailable)
	}
	return d, err
}

func (s *crashingStore) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	out, err := s.Store.AppendAudit(ctx, e)
	if err == nil && e.Action == activities.AuditDeviceBind && s.crash("AppendAudit") {
		return store.AuditEntry{}, fmt.Errorf("worker lost: %w", store.ErrUnavailable)
	}
	return out, err
}

// TestBindRetriedAfterCrash runs the real activities on SQLite; a confirm
// attempt dies after doing its work and the retry binds the device exactly
// once.
func TestBindRetriedAfterCrash(t *testing.T) {
	for _, point := range []string{"ActivateDevice", "AppendAudit"} {
		t.Run(point, func(t *testing.T) {
			base := storetest.SQLite(t)
			st := &crashingStore{Store: base, crashIn: point}
			keys, err := mfa.GenerateKeyring()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := base.PutAccount(ctx, store.Account{ID: "acct-1", Type: store.Personal, BoundPhone: "+86-1",
				Logins: []store.Login{{Kind: store.LoginQQ, ID: "10001"}}}); err != nil {
				t.Fatal(err)
			}
			env := newEnv(t)
			env.RegisterActivity(&activities.Activities{Store: st, Notifier: notify.Outbox{Store: base}, Keys: keys})

			var smsCode, code1, code2 string
			env.RegisterDelayedCallback(func() {
				msgs, _ := base.ListOutbox(ctx, "+86-1", 10)
				for _, m := range msgs {
					if m.Kind == activities.KindSMSCode {
						smsCode = sixDigits.FindString(m.Body)
					}
				}
				env.UpdateWorkflow(workflows.UpdateSMSCode, "sms", &testsuite.TestUpdateCallback{
					OnAccept: func() {}, OnReject: func(err error) { t.Errorf("sms rejected: %v", err) },
					OnComplete: func(_ any, err error) {
						if err != nil {
							t.Errorf("sms: %v", err)
						}
					},
				}, workflows.BindSMSCodeInput{BindingID: "b1", Code: smsCode})
			}, time.Minute)
			env.RegisterDelayedCallback(func() {
				d, err := base.GetDevice(ctx, "dev-b1")
				if err != nil {
					t.Errorf("pending device: %v", err)
					return
				}
				secret, err := keys.Open(d.Secret, mfa.AAD(string(store.SealedDevices), d.ID))
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				now := time.Now()
				code1, code2 = mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), mfa.TOTP(secret, now, mfa.Params{})
				env.UpdateWorkflow(workflows.UpdateConfirm, "confirm", &testsuite.TestUpdateCallback{
					OnAccept: func() {}, OnReject: func(err error) { t.Errorf("confirm rejected: %v", err) },
					OnComplete: func(_ any, err error) {
						if err != nil {
							t.Errorf("confirm: %v", err)
						}
					},
				}, workflows.BindConfirmInput{BindingID: "b1", Code1: code1, Code2: code2, Protection: workflows.Protection{Operation: true}})
			}, 2*time.Minute)
			_, final := run(t, env, virtual, []step{{at: 0, update: workflows.UpdateBegin}})
			if final.Status != workflows.BindingBound {
				t.Fatalf("final = %+v", final)
			}
			if !st.crashed {
				t.Fatal("the store never crashed")
			}
			if st.activations != 1 {
				t.Fatalf("activations = %d, want 1", st.activations)
			}
			ds, err := base.ListDevices(ctx, "acct-1")
			if err != nil || len(ds) != 1 || ds[0].Status != store.DeviceActive {
				t.Fatalf("devices = %+v (%v), want one active", ds, err)
			}
			es, err := base.ListAudit(ctx, store.AuditFilter{AccountID: "acct-1"})
			if err != nil {
				t.Fatal(err)
			}
			binds := 0
			for _, e := range es {
				if e.Action == activities.AuditDeviceBind && e.Outcome == "ok" {
					binds++
				}
			}
			if binds != 1 {
				t.Fatalf("bind audit entries = %d, want 1", binds)
			}
			if p, _ := base.GetProtection(ctx, "acct-1"); !p.Operation || p.Login {
				t.Fatalf("protection = %+v", p)
			}
		})
	}
}

func TestBindCancelled(t *testing.T) {
	env := newEnv(t)
	m := &mocks{}
	m.install(env)
	cancel := workflows.BindCancelInput{BindingID: "b1"}
	answers, final := run(t, env, virtual, []step{
		{at: 0, update: workflows.UpdateBegin},
		{at: time.Minute, update: workflows.UpdateSMSCode, arg: smsOK, status: workflows.BindingAwaitingDeviceCodes},
		{at: 2 * time.Minute, update: workflows.UpdateCancelBinding, arg: workflows.BindCancelInput{BindingID: "other"}, reject: workflows.ErrTypeWrongState},
		{at: 3 * time.Minute, update: workflows.UpdateCancelBinding, arg: cancel, status: workflows.BindingCancelled},
	})
	if final.Status != workflows.BindingCancelled {
		t.Fatalf("final = %s, want cancelled", final.Status)
	}
	if got := answers[3].state.Status; got != workflows.BindingCancelled {
		t.Fatalf("cancel answered %s", got)
	}
	if len(m.expired) != 1 || m.expired[0].DeviceID != "dev-b1" || m.expired[0].Outcome != workflows.BindingCancelled {
		t.Fatalf("cleanup = %+v, want one with the pending device and outcome cancelled", m.expired)
	}
}

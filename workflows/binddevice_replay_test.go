package workflows_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protopath"
	"google.golang.org/protobuf/reflect/protorange"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

var update = flag.Bool("update", false, "record the current version's histories (testdata/*_v2.json) from runs on a real server")

func TestMain(m *testing.M) { harness.Main(m) }

// replayKeys encrypts the payloads of the recorded history. It is a test
// key: the recording holds only throwaway codes of a throwaway device.
const replayKeys = "replay-test:wQlBMgrlZm1duEzytCRTQMoVTPLvfOWKOd33PZE7CLg="

// virtualHistory is where -update records the history of the current code; the
// histories of earlier shipped versions stay beside it (_v1, ...) and every
// one of them is replayed.
const virtualHistory = "testdata/binddevice_virtual_v2.json"

// failureConverter encrypts failure details (tries left, retry-after)
// and messages with the codec too: the default failure converter encodes
// details with the default data converter, in plain JSON.
func failureConverter(keys *mfa.Keyring) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: codec.DataConverter(keys), EncodeCommonAttributes: true,
	})
}

// startWorker starts a worker as production does (worker.Options:
// versioned, in the Worker Deployment, as build
// temporalharness.TestBuildID) on c, whose codec seals the payloads, and
// returns once its version is current.
func startWorker(t *testing.T, c client.Client, a *activities.Activities) {
	t.Helper()
	w := sdkworker.New(c, workflows.TaskQueue, worker.Options(temporalharness.TestBuildID))
	worker.Register(w, a)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := worker.Bootstrap(ctx, c, temporalharness.TestBuildID); err != nil {
		t.Fatal(err)
	}
}

func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// TestBindVirtualOnServer runs a whole virtual binding on a real Temporal
// server with the production registration and real activities on SQLite,
// payloads encrypted by the codec: a wrong SMS code, the right one, two
// codes that are not consecutive, then the right two. It checks that no
// code is readable in the history and, with -update, records the history
// for TestReplayBindVirtual.
func TestBindVirtualOnServer(t *testing.T) {
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	srv := temporalharness.Start(t)
	c := srv.NewClientWithOptions(client.Options{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys), Logger: quietLogger()})
	st := storetest.SQLite(t)
	startWorker(t, c, &activities.Activities{Store: st, Notifier: notify.Outbox{Store: st}, Keys: keys})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const account, phone = "acct-replay", "+8613800138000"
	if _, err := st.PutAccount(ctx, store.Account{ID: account, Type: store.Personal, BoundPhone: phone,
		Logins: []store.Login{{Kind: store.LoginQQ, ID: "10001"}}, LoginMethod: store.LoginMFA}); err != nil {
		t.Fatal(err)
	}
	in := workflows.BindDeviceInput{AccountID: account, DeviceType: workflows.DeviceVirtual, BindingID: "bnd-replay", RequestedBy: "console", RemoteIP: "192.0.2.7"}
	id := workflows.BindWorkflowID(account)

	// Begin: Update-with-Start, as the console does.
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.BindDevice, in)
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: workflows.UpdateBegin, WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	if err != nil {
		t.Fatal(err)
	}
	var state workflows.BindingState
	if err := h.Get(ctx, &state); err != nil || state.Status != workflows.BindingAwaitingSMSCode {
		t.Fatalf("begin: %+v, %v", state, err)
	}
	run, err := start.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}

	send := func(name string, arg any) (workflows.BindingState, error) {
		t.Helper()
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return workflows.BindingState{}, err
		}
		var st workflows.BindingState
		err = h.Get(ctx, &st)
		return st, err
	}
	wantErr := func(err error, typ string) {
		t.Helper()
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != typ {
			t.Fatalf("error = %v, want %s", err, typ)
		}
	}

	msgs, err := st.ListOutbox(ctx, phone, 10)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("outbox: %d messages, %v", len(msgs), err)
	}
	smsCode := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(msgs[0].Body)
	wrongSMS := "000000"
	if smsCode == wrongSMS {
		wrongSMS = "111111"
	}
	_, err = send(workflows.UpdateSMSCode, workflows.BindSMSCodeInput{BindingID: in.BindingID, Code: wrongSMS})
	wantErr(err, workflows.ErrTypeInvalidCode)
	if state, err = send(workflows.UpdateSMSCode, workflows.BindSMSCodeInput{BindingID: in.BindingID, Code: smsCode}); err != nil || state.Status != workflows.BindingAwaitingDeviceCodes {
		t.Fatalf("sms code: %+v, %v", state, err)
	}

	// The console reads the pending device's secret to show the QR code.
	d, err := st.GetDevice(ctx, state.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := keys.Open(d.Secret, mfa.AAD(string(store.SealedDevices), d.ID))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code1, code2 := mfa.TOTP(secret, now.Add(-30*time.Second), mfa.Params{}), mfa.TOTP(secret, now, mfa.Params{})
	_, err = send(workflows.UpdateConfirm, workflows.BindConfirmInput{BindingID: in.BindingID, Code1: code2, Code2: code2})
	wantErr(err, workflows.ErrTypeNotConsecutive)
	q, err := c.QueryWorkflow(ctx, id, "", workflows.QueryBindingStatus)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Get(&state); err != nil || state.Status != workflows.BindingAwaitingDeviceCodes {
		t.Fatalf("query: %+v, %v", state, err)
	}
	state, err = send(workflows.UpdateConfirm, workflows.BindConfirmInput{BindingID: in.BindingID, Code1: code1, Code2: code2, Protection: workflows.Protection{Login: true, Operation: true}})
	if err != nil || state.Status != workflows.BindingBound {
		t.Fatalf("confirm: %+v, %v", state, err)
	}
	var final workflows.BindingState
	if err := c.GetWorkflow(ctx, id, run.GetRunID()).Get(ctx, &final); err != nil || final.Status != workflows.BindingBound {
		t.Fatalf("result: %+v, %v", final, err)
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
	checkNoPlainCodes(t, hist, raw, smsCode, wrongSMS, code1, code2, mfa.EncodeSecret(secret))
	if *update {
		if err := os.MkdirAll(filepath.Dir(virtualHistory), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(virtualHistory, append(raw, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s (%d events)", virtualHistory, len(hist.Events))
	}
}

// checkNoPlainCodes fails if any code is in the history's JSON or in the
// bytes of any payload, or if a payload is not encrypted by the codec.
func checkNoPlainCodes(t *testing.T, hist *historypb.History, raw []byte, codes ...string) {
	t.Helper()
	for _, code := range codes {
		if regexp.MustCompile(`(^|[^0-9A-Za-z])` + code + `($|[^0-9A-Za-z])`).Match(raw) {
			t.Errorf("a code or secret is readable in the history JSON")
		}
	}
	payloads := 0
	err := protorange.Range(hist.ProtoReflect(), func(v protopath.Values) error {
		m, ok := v.Index(-1).Value.Interface().(protoreflect.Message)
		if !ok {
			return nil
		}
		pl, ok := m.Interface().(*commonpb.Payload)
		if !ok {
			return nil
		}
		payloads++
		if enc := string(pl.GetMetadata()[converter.MetadataEncoding]); enc != codec.Encoding {
			t.Errorf("payload with encoding %q, want %q", enc, codec.Encoding)
		}
		for _, code := range codes {
			if bytes.Contains(pl.GetData(), []byte(code)) {
				t.Errorf("a code or secret is in a payload's bytes")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if payloads < 10 {
		t.Fatalf("found %d payloads in the history; the walk is broken", payloads)
	}
}

// TestReplayBindVirtual replays the recorded history against the current
// BindDevice: a change that breaks determinism fails here. Re-record with
// go test ./workflows/ -run TestBindVirtualOnServer -update.
func TestReplayBindVirtual(t *testing.T) {
	keys, err := mfa.ParseKeyring(replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/binddevice_*.json")
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
				t.Fatalf("%v (record it with -run TestBindVirtualOnServer -update)", err)
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
			r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: codec.DataConverter(keys), FailureConverter: failureConverter(keys)})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflow(workflows.BindDevice)
			if err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

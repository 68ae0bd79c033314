package devstack

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const testTaskQueue = "devstack-test"

// testSearchAttributes are the appeal search attributes mfaflow registers.
func testSearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		"MfaflowAppealStatus":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MfaflowApplicantType": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MfaflowSubmittedAt":   enumspb.INDEXED_VALUE_TYPE_DATETIME,
		"MfaflowAssignee":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MfaflowSLABreached":   enumspb.INDEXED_VALUE_TYPE_BOOL,
	}
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// greet is the tiny workflow the test runs: one activity, one result.
func greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, greeting, name).Get(ctx, &out)
	return out, err
}

func greeting(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

func mustStartTemporal(t *testing.T, cfg TemporalConfig) *Temporal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	tmp, err := StartTemporal(ctx, cfg)
	if err != nil {
		t.Fatalf("StartTemporal: %v", err)
	}
	t.Logf("StartTemporal took %v (frontend %s, ui %q)", time.Since(start).Round(time.Millisecond), tmp.FrontendAddr(), tmp.UIAddr())
	t.Cleanup(func() { _ = tmp.Stop() })
	return tmp
}

func dialTest(t *testing.T, tmp *Temporal) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  tmp.FrontendAddr(),
		Namespace: tmp.Namespace(),
		Logger:    sdklog.NewStructuredLogger(quiet(testLogger(), slog.LevelWarn)),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", tmp.FrontendAddr(), err)
	}
	t.Cleanup(c.Close)
	return c
}

func listSearchAttributes(t *testing.T, c client.Client, ns string) map[string]enumspb.IndexedValueType {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	return resp.GetCustomAttributes()
}

// describeNamespace checks the namespace's retention and returns its id.
func describeNamespace(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	resp, err := c.WorkflowService().DescribeNamespace(context.Background(),
		&workflowservice.DescribeNamespaceRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("DescribeNamespace: %v", err)
	}
	if got := resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != DefaultRetention {
		t.Fatalf("retention = %v, want %v", got, DefaultRetention)
	}
	return resp.GetNamespaceInfo().GetId()
}

func checkSearchAttributes(t *testing.T, got, want map[string]enumspb.IndexedValueType) {
	t.Helper()
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("search attribute %s = %v, want %v", name, got[name], typ)
		}
	}
}

func TestTemporalPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	attrs := testSearchAttributes()
	const workflowID = "devstack-greet"

	// First start: fresh database, UI on a free port.
	first := mustStartTemporal(t, TemporalConfig{
		DataDir:          dir,
		Namespace:        "mfaflow",
		SearchAttributes: attrs,
		Logger:           testLogger(),
	})
	if first.Namespace() != "mfaflow" {
		t.Fatalf("Namespace() = %q", first.Namespace())
	}
	if first.UIAddr() == "" {
		t.Fatal("UIAddr() is empty with UIPort 0")
	}
	resp, err := http.Get("http://" + first.UIAddr() + "/")
	if err != nil {
		t.Fatalf("GET ui: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("GET ui / = %s, %d bytes", resp.Status, len(body))
	}

	resp, err = http.Get("http://" + first.FrontendHTTPAddr() + "/api/v1/namespaces/mfaflow")
	if err != nil {
		t.Fatalf("GET frontend HTTP API: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET frontend HTTP API namespace = %s", resp.Status)
	}

	c := dialTest(t, first)
	checkSearchAttributes(t, listSearchAttributes(t, c, first.Namespace()), attrs)
	nsID := describeNamespace(t, c, first.Namespace())

	w := worker.New(c, testTaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(greet, workflow.RegisterOptions{Name: "Greet"})
	w.RegisterActivity(greeting)
	if err := w.Start(); err != nil {
		t.Fatalf("worker start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	submitted := time.Now().UTC().Truncate(time.Second)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        workflowID,
		TaskQueue: testTaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("MfaflowAppealStatus").ValueSet("pending_review"),
			temporal.NewSearchAttributeKeyTime("MfaflowSubmittedAt").ValueSet(submitted),
			temporal.NewSearchAttributeKeyBool("MfaflowSLABreached").ValueSet(false),
		),
	}, "Greet", "mfaflow")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if out != "hello mfaflow" {
		t.Fatalf("workflow result = %q", out)
	}
	w.Stop()
	c.Close()
	if err := first.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := first.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Second start on the same directory, without UI, with one more search
	// attribute: everything from before is still there and the new one is added.
	more := testSearchAttributes()
	more["MfaflowReviewRound"] = enumspb.INDEXED_VALUE_TYPE_INT
	second := mustStartTemporal(t, TemporalConfig{
		DataDir:          dir,
		Namespace:        "mfaflow",
		UIPort:           -1,
		SearchAttributes: more,
		Logger:           testLogger(),
	})
	if second.UIAddr() != "" {
		t.Fatalf("UIAddr() = %q with UIPort -1", second.UIAddr())
	}
	c2 := dialTest(t, second)
	checkSearchAttributes(t, listSearchAttributes(t, c2, second.Namespace()), more)
	if id := describeNamespace(t, c2, second.Namespace()); id != nsID {
		t.Fatalf("namespace id after restart = %s, want %s", id, nsID)
	}

	desc, err := c2.DescribeWorkflowExecution(ctx, workflowID, run.GetRunID())
	if err != nil {
		t.Fatalf("DescribeWorkflowExecution after restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status after restart = %v", st)
	}
	var events int
	for it := c2.GetWorkflowHistory(ctx, workflowID, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT); it.HasNext(); {
		if _, err := it.Next(); err != nil {
			t.Fatalf("history after restart: %v", err)
		}
		events++
	}
	if events < 10 {
		t.Fatalf("history after restart has %d events", events)
	}
	var result string
	if err := c2.GetWorkflow(ctx, workflowID, run.GetRunID()).Get(ctx, &result); err != nil || result != "hello mfaflow" {
		t.Fatalf("result after restart = %q, %v", result, err)
	}
	list, err := c2.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: second.Namespace(),
		Query:     `MfaflowAppealStatus = "pending_review" AND MfaflowSLABreached = false`,
	})
	if err != nil {
		t.Fatalf("ListWorkflow by search attributes: %v", err)
	}
	if n := len(list.GetExecutions()); n != 1 {
		t.Fatalf("ListWorkflow by search attributes found %d executions, want 1", n)
	}
	c2.Close()
	if err := second.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	// A search attribute that exists with another type is a clear error.
	conflict := testSearchAttributes()
	conflict["MfaflowAssignee"] = enumspb.INDEXED_VALUE_TYPE_INT
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer scancel()
	if tmp, err := StartTemporal(sctx, TemporalConfig{DataDir: dir, Namespace: "mfaflow", UIPort: -1, SearchAttributes: conflict}); err == nil {
		_ = tmp.Stop()
		t.Fatal("StartTemporal accepted a search attribute with a changed type")
	} else if !strings.Contains(err.Error(), "MfaflowAssignee") {
		t.Fatalf("conflict error does not name the attribute: %v", err)
	} else {
		t.Logf("changed type refused: %v", err)
	}
}

func TestTemporalTwoInstances(t *testing.T) {
	a := mustStartTemporal(t, TemporalConfig{DataDir: t.TempDir()})
	b := mustStartTemporal(t, TemporalConfig{DataDir: t.TempDir()})
	if a.FrontendAddr() == b.FrontendAddr() || a.UIAddr() == b.UIAddr() {
		t.Fatalf("instances share addresses: %s %s, %s %s", a.FrontendAddr(), a.UIAddr(), b.FrontendAddr(), b.UIAddr())
	}
	for _, tmp := range []*Temporal{a, b} {
		resp, err := http.Get("http://" + tmp.UIAddr() + "/")
		if err != nil {
			t.Fatalf("GET ui: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET ui %s = %s", tmp.UIAddr(), resp.Status)
		}
		c := dialTest(t, tmp)
		if _, err := c.CheckHealth(context.Background(), &client.CheckHealthRequest{}); err != nil {
			t.Fatalf("health of %s: %v", tmp.FrontendAddr(), err)
		}
		if tmp.Namespace() != DefaultNamespace {
			t.Fatalf("Namespace() = %q", tmp.Namespace())
		}
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestTemporalConfigErrors(t *testing.T) {
	ctx := context.Background()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		cfg  TemporalConfig
	}{
		{"no data dir", TemporalConfig{}},
		{"bad ip", TemporalConfig{DataDir: t.TempDir(), IP: "localhost"}},
		{"bad port", TemporalConfig{DataDir: t.TempDir(), FrontendPort: 70000}},
		{"bad ui port", TemporalConfig{DataDir: t.TempDir(), UIPort: -2}},
		{"frontend port taken", TemporalConfig{DataDir: t.TempDir(), FrontendPort: busyPort}},
		{"ui port taken", TemporalConfig{DataDir: t.TempDir(), UIPort: busyPort}},
		{"unspecified attribute type", TemporalConfig{DataDir: t.TempDir(),
			SearchAttributes: map[string]enumspb.IndexedValueType{"X": enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp, err := StartTemporal(ctx, tt.cfg)
			if err == nil {
				_ = tmp.Stop()
				t.Fatal("StartTemporal succeeded")
			}
			if !strings.HasPrefix(err.Error(), "devstack: ") {
				t.Fatalf("error without prefix: %v", err)
			}
		})
	}
}

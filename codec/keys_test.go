package codec_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/internal/harness/temporalharness"
	"github.com/mfaflow/mfaflow/mfa"
)

// waitForFinish records its input and every "note" signal, and ends on
// the "finish" signal.
func waitForFinish(ctx workflow.Context, in string) ([]string, error) {
	got := []string{in}
	notes, finish := workflow.GetSignalChannel(ctx, "note"), workflow.GetSignalChannel(ctx, "finish")
	for done := false; !done; {
		s := workflow.NewSelector(ctx)
		s.AddReceive(notes, func(c workflow.ReceiveChannel, _ bool) {
			var n string
			c.Receive(ctx, &n)
			got = append(got, n)
		})
		s.AddReceive(finish, func(c workflow.ReceiveChannel, _ bool) {
			c.Receive(ctx, nil)
			done = true
		})
		s.Select(ctx)
	}
	return got, nil
}

// TestOpenWorkflowKeysAcrossRotation: a workflow started before a rotation
// holds payloads of the old key, and gains new-key payloads after it; both
// show until the workflow ends, and its old payloads still decode.
func TestOpenWorkflowKeysAcrossRotation(t *testing.T) {
	old, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	newer, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := mfa.ParseKeyring(newer.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	ts := temporalharness.StartEncrypted(t, old)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const queue = "codec-rotation"
	run, err := ts.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wf-rotation", TaskQueue: queue}, waitForFinish, "before")
	if err != nil {
		t.Fatal(err)
	}
	// The rotation: the worker and the client now hold the new key first.
	rc := ts.NewClientWithOptions(codec.ClientOptions(rotated, client.Options{}))
	w := worker.New(rc, queue, worker.Options{})
	w.RegisterWorkflow(waitForFinish)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if err := rc.SignalWorkflow(ctx, "wf-rotation", "", "note", "after"); err != nil {
		t.Fatal(err)
	}
	ns := ts.GetDefaultNamespace()
	want := []string{newer.CurrentID(), old.CurrentID()}
	slices.Sort(want)
	// Named ones are looked up directly, without waiting for visibility;
	// an unknown id is skipped.
	open, err := codec.OpenWorkflowKeys(ctx, rc, ns, []string{"no-such-workflow", "wf-rotation"})
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].ID != "wf-rotation" || !slices.Equal(open[0].KeyIDs, want) {
		t.Fatalf("named workflows: %+v", open)
	}
	waitFor(t, "both keys in the open workflow's history", func() bool {
		open, err := codec.OpenWorkflowKeys(ctx, rc, ns, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(open) == 1 && open[0].ID == "wf-rotation" && open[0].Type == "waitForFinish" && slices.Equal(open[0].KeyIDs, want)
	})
	if err := rc.SignalWorkflow(ctx, "wf-rotation", "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := rc.GetWorkflow(ctx, "wf-rotation", run.GetRunID()).Get(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"before", "after"}) {
		t.Fatalf("workflow saw %v", got)
	}
	waitFor(t, "no open workflow once it ended", func() bool {
		open, err := codec.OpenWorkflowKeys(ctx, rc, ns, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(open) == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

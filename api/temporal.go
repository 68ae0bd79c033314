package api

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/mfaflow/mfaflow/workflows"
)

// temporalTimeout bounds every call to Temporal from a request: when
// Temporal is down the client answers 503 instead of waiting for the SDK's
// own retries to give up.
const temporalTimeout = 30 * time.Second

// startWithUpdate starts workflow id (failing if one runs) with its first
// update, and returns the update's result. Errors are Temporal's as they are.
func startWithUpdate[T any](ctx context.Context, tc client.Client, id string, reuse enumspb.WorkflowIdReusePolicy, workflow string, in any, update string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	var out T
	start := tc.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    reuse,
	}, workflow, in)
	h, err := tc.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions:          client.UpdateWorkflowOptions{UpdateName: update, WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	if err == nil {
		err = h.Get(ctx, &out)
	}
	return out, err
}

// runUpdate sends an update to a running workflow and returns its result.
func runUpdate[T any](ctx context.Context, tc client.Client, id, update string, arg any) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	var out T
	h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: update, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &out)
	}
	return out, err
}

// runQuery queries a workflow.
func runQuery[T any](ctx context.Context, tc client.Client, id, query string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, temporalTimeout)
	defer cancel()
	var out T
	v, err := tc.QueryWorkflow(ctx, id, "", query)
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

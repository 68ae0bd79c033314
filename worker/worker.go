// Package worker registers mfaflow's workflows and activities on a Temporal
// worker. Register is the one registration used by the production worker,
// the dev stack and the tests, so tests run exactly what production runs.
package worker

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/workflows"
)

// Register adds every workflow and activity to r.
func Register(r sdkworker.Registry, a *activities.Activities) {
	r.RegisterWorkflow(workflows.BindDevice)
	r.RegisterWorkflow(workflows.UnbindAppeal)
	r.RegisterWorkflow(workflows.DocumentRetention)
	r.RegisterActivity(a)
}

// Run polls the task queue until ctx ends. It returns the worker's start error.
func Run(ctx context.Context, c client.Client, a *activities.Activities, opts sdkworker.Options) error {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, a)
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

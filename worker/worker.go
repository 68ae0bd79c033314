// Package worker registers mfaflow's workflows and activities on a Temporal
// worker. Register is the one registration used by the production worker,
// the dev stack and the tests, so tests run exactly what production runs.
//
// Workers are versioned (SPEC §6d): each joins the Worker Deployment
// DeploymentName with a build id. Appeals and bindings are pinned, so one
// runs to its end on the build that started it while new ones go to the
// deployment's current version; document retention auto-upgrades
// (Register says why).
package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/workflows"
)

// DeploymentName is the Worker Deployment every mfaflow worker joins.
const DeploymentName = "mfaflow"

// pinned: a workflow stays on the build that started it until it ends
// (continue-as-new included), so a deploy never replays an open appeal or
// binding on code it was not written by.
var pinned = workflow.RegisterOptions{VersioningBehavior: workflow.VersioningBehaviorPinned}

// autoUpgrade: a workflow moves to the deployment's current version at its
// next workflow task.
var autoUpgrade = workflow.RegisterOptions{VersioningBehavior: workflow.VersioningBehaviorAutoUpgrade}

// Register adds every workflow and activity to r.
//
// BindDevice (minutes) and UnbindAppeal (weeks: it ends when the appeal
// closes, a day's grace after) are pinned: a build is drained once its
// last binding and appeal end.
//
// DocumentRetention auto-upgrades. It sleeps for the whole retention
// period (90 days by default, 180 in production), then runs one activity.
// Pinned, every build that ever closed an appeal would have to keep
// workers polling for months only to wake that timer, and a rollback or a
// fix of the deletion would never reach the retentions already waiting.
// Its code is one timer and one activity, so a change to it is made with
// workflow.GetVersion like any change to a running workflow, and the
// replay gate (workflows/testdata/documentretention_*.json) holds every
// shipped version to it.
func Register(r sdkworker.Registry, a *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.BindDevice, pinned)
	r.RegisterWorkflowWithOptions(workflows.UnbindAppeal, pinned)
	r.RegisterWorkflowWithOptions(workflows.DocumentRetention, autoUpgrade)
	r.RegisterActivity(a)
}

// Version is build buildID's version of the deployment.
func Version(buildID string) sdkworker.WorkerDeploymentVersion {
	return sdkworker.WorkerDeploymentVersion{DeploymentName: DeploymentName, BuildID: buildID}
}

// Options returns the options of a worker of build buildID: versioning on,
// in the deployment DeploymentName, workflows pinned by default.
func Options(buildID string) sdkworker.Options {
	return sdkworker.Options{DeploymentOptions: sdkworker.DeploymentOptions{
		UseVersioning:             true,
		Version:                   Version(buildID),
		DefaultVersioningBehavior: workflow.VersioningBehaviorPinned,
	}}
}

// Run polls the task queue until ctx ends. A versioned worker (Options)
// makes its version current when the deployment has never had a current
// version (Bootstrap). It returns the worker's start error, or Bootstrap's.
func Run(ctx context.Context, c client.Client, a *activities.Activities, opts sdkworker.Options) error {
	return run(ctx, c, a, opts, false)
}

// RunCurrent is Run for the dev stack, where this worker is the only one:
// its version becomes current whatever was current before (a dev data
// directory kept from an earlier build, a build id given in
// MFAFLOW_BUILD_ID). Workflows pinned to an earlier build stay on it.
func RunCurrent(ctx context.Context, c client.Client, a *activities.Activities, opts sdkworker.Options) error {
	return run(ctx, c, a, opts, true)
}

func run(ctx context.Context, c client.Client, a *activities.Activities, opts sdkworker.Options, force bool) error {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, a)
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	defer w.Stop()
	if d := opts.DeploymentOptions; d.UseVersioning {
		if _, err := bootstrap(ctx, c, d.Version.BuildID, force); err != nil && ctx.Err() == nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

// Bootstrap makes buildID the current version of the deployment if the
// deployment has never had one (a fresh Temporal namespace, the dev stack,
// a test server): without a current version the server hands new
// workflows to unversioned workers only, and there are none. Once a
// deployment has had a current version, rollouts and rollbacks are the
// operator's (temporal worker deployment set-current-version, README
// "Operations"), and Bootstrap changes nothing. It waits, polling, until
// the server knows the running worker's version, and reports whether it
// made it current. It returns early only when ctx ends or the server has
// no Worker Deployment API.
func Bootstrap(ctx context.Context, c client.Client, buildID string) (bool, error) {
	return bootstrap(ctx, c, buildID, false)
}

// SetCurrent makes buildID the current version of the deployment, once the
// server knows it (its worker polls), whatever was current before: what
// "temporal worker deployment set-current-version" does, for the dev
// stack and tests.
func SetCurrent(ctx context.Context, c client.Client, buildID string) error {
	_, err := bootstrap(ctx, c, buildID, true)
	return err
}

func bootstrap(ctx context.Context, c client.Client, buildID string, force bool) (bool, error) {
	h := c.WorkerDeploymentClient().GetHandle(DeploymentName)
	wait := 100 * time.Millisecond
	for {
		done, set, err := bootstrapOnce(ctx, h, buildID, force)
		if done {
			return set, nil
		}
		if err != nil && unsupported(err) {
			return false, fmt.Errorf("worker: the Temporal server has no Worker Deployment API (enable system.enableDeploymentVersions): %w", err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// bootstrapOnce does one round of Bootstrap; done says it need not run again.
func bootstrapOnce(ctx context.Context, h client.WorkerDeploymentHandle, buildID string, force bool) (done, set bool, err error) {
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return false, false, err // not found until the first poll registers the version
	}
	rc := d.Info.RoutingConfig
	if force && rc.CurrentVersion != nil && rc.CurrentVersion.BuildID == buildID {
		return true, false, nil
	}
	if !force && (rc.CurrentVersion != nil || !rc.CurrentVersionChangedTime.IsZero()) {
		return true, false, nil // the operator's, or another worker's, choice
	}
	known := false
	for _, v := range d.Info.VersionSummaries {
		known = known || v.Version.BuildID == buildID
	}
	if !known {
		return false, false, nil
	}
	_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID, ConflictToken: d.ConflictToken})
	return err == nil, err == nil, err
}

func unsupported(err error) bool {
	var unimpl *serviceerror.Unimplemented
	var denied *serviceerror.PermissionDenied
	return errors.As(err, &unimpl) || errors.As(err, &denied)
}

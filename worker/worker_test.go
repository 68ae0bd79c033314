package worker_test

import (
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// TestRegister: every activity the workflows name is registered under that
// name, and the registration accepts every exported method of Activities.
func TestRegister(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	worker.Register(env, &activities.Activities{})
	for _, name := range []string{
		workflows.ActivitySendBindingSMS,
		workflows.ActivityCheckBindingSMS,
		workflows.ActivityCreatePendingDevice,
		workflows.ActivityConfirmVirtual,
		workflows.ActivityConfirmHardware,
		workflows.ActivityExpireBinding,
		workflows.ActivityCheckEligibility,
		workflows.ActivitySetAppealStatus,
		workflows.ActivityAuditAppeal,
		workflows.ActivityNotifyAppealOwner,
		workflows.ActivityNotifyLead,
		workflows.ActivityDeleteObjects,
		workflows.ActivityUnbindAll,
		workflows.ActivityDeleteDocuments,
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("activity %q is not registered: %v", name, r)
				}
			}()
			env.OnActivity(name, nil, nil)
		})
	}
}

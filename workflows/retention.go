package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ClosedGrace is how long a closed appeal keeps answering (late queries,
// refused updates) before it hands its documents to DocumentRetention and
// ends, when the retention period is longer; shorter ones are waited out in
// the appeal itself.
const ClosedGrace = 24 * time.Hour

// RetentionWorkflowID is the workflow ID of an appeal's document retention.
func RetentionWorkflowID(appealID string) string { return "retention-" + appealID }

// RetentionInput is the argument of DocumentRetention: the closed appeal's
// documents (object keys and hashes, never bytes) and when they go.
type RetentionInput struct {
	AppealID  string
	AccountID string
	Documents []Document
	DeleteAt  time.Time
}

// RetentionResult counts the object keys deleted.
type RetentionResult struct {
	Deleted int
}

// DocumentRetention keeps a closed appeal's documents until in.DeleteAt and
// then deletes them (DeleteDocuments, which records the deletion). It runs
// apart from the appeal (SPEC §6d), so an appeal's own history ends days
// after it closes, and a change of the retention period or of this
// workflow never touches open appeals. The deletion retries until the
// object store answers.
func DocumentRetention(ctx workflow.Context, in RetentionInput) (RetentionResult, error) {
	if wait := in.DeleteAt.Sub(workflow.Now(ctx)); wait > 0 {
		if err := workflow.Sleep(ctx, wait); err != nil {
			return RetentionResult{}, err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute},
	})
	var out DeleteDocumentsResult
	err := workflow.ExecuteActivity(ctx, ActivityDeleteDocuments, DeleteDocumentsInput{
		AppealID: in.AppealID, AccountID: in.AccountID, Documents: in.Documents,
	}).Get(ctx, &out)
	return RetentionResult{Deleted: out.Deleted}, err
}

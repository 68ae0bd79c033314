package codec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// payloadName is the protobuf name of a Temporal payload.
var payloadName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// PayloadKeyIDs adds to ids the key id of every encrypted payload found
// anywhere in m (a history event, say: inputs, results, failures, memos,
// headers), counting each payload once. Payloads this codec did not encrypt
// (search attributes) are skipped. It decrypts nothing.
func PayloadKeyIDs(m proto.Message, ids map[string]int) {
	if m != nil {
		walkPayloads(m.ProtoReflect(), ids)
	}
}

func walkPayloads(m protoreflect.Message, ids map[string]int) {
	if m.Descriptor().FullName() == payloadName {
		if p, ok := m.Interface().(*commonpb.Payload); ok && string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding {
			ids[string(p.GetMetadata()[MetadataKeyID])]++
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walkPayloads(mv.Message(), ids)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i, l := 0, v.List(); i < l.Len(); i++ {
					walkPayloads(l.Get(i).Message(), ids)
				}
			}
		case fd.Message() != nil:
			walkPayloads(v.Message(), ids)
		}
		return true
	})
}

// HistoryClient is the part of client.Client that OpenWorkflowKeys uses.
type HistoryClient interface {
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	GetWorkflowHistory(ctx context.Context, workflowID string, runID string, isLongPoll bool, filterType enumspb.HistoryEventFilterType) client.HistoryEventIterator
}

// OpenWorkflow is one running workflow and the ids of the keys that
// sealed the payloads of its current run's history: a worker replaying it
// needs every one of them in its ring.
type OpenWorkflow struct {
	ID      string
	RunID   string
	Type    string
	Started time.Time
	KeyIDs  []string // sorted
}

// OpenWorkflowKeys lists the running workflows of the client's namespace
// and, from each one's history, the key ids of its encrypted payloads. The
// list comes from visibility, which may lag a start by a moment, so the
// workflows named in also (the store's open appeals, say) are looked up
// one by one as well, and kept when running. It reads histories without
// decrypting them, so it needs no key. It returns the client's errors
// (Temporal unreachable, visibility refused).
func OpenWorkflowKeys(ctx context.Context, c HistoryClient, namespace string, also []string) ([]OpenWorkflow, error) {
	var out []OpenWorkflow
	seen := map[string]bool{}
	var page []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: "ExecutionStatus = 'Running'", NextPageToken: page, PageSize: 1000,
		})
		if err != nil {
			return nil, fmt.Errorf("codec: list open workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if seen[e.GetExecution().GetWorkflowId()] {
				continue
			}
			w, err := historyKeys(ctx, c, e)
			if err != nil {
				return nil, err
			}
			seen[w.ID] = true
			out = append(out, w)
		}
		page = resp.GetNextPageToken()
		if len(page) == 0 {
			break
		}
	}
	for _, id := range also {
		if seen[id] {
			continue
		}
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			continue
		case err != nil:
			return nil, fmt.Errorf("codec: describe %s: %w", id, err)
		case d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			continue
		}
		w, err := historyKeys(ctx, c, d.GetWorkflowExecutionInfo())
		if err != nil {
			return nil, err
		}
		seen[id] = true
		out = append(out, w)
	}
	return out, nil
}

// historyKeys reads the key ids of one run's history.
func historyKeys(ctx context.Context, c HistoryClient, e *workflowpb.WorkflowExecutionInfo) (OpenWorkflow, error) {
	w := OpenWorkflow{ID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
		Type: e.GetType().GetName(), Started: e.GetStartTime().AsTime()}
	ids := map[string]int{}
	it := c.GetWorkflowHistory(ctx, w.ID, w.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return w, fmt.Errorf("codec: history of %s: %w", w.ID, err)
		}
		PayloadKeyIDs(ev, ids)
	}
	for id := range ids {
		w.KeyIDs = append(w.KeyIDs, id)
	}
	slices.Sort(w.KeyIDs)
	return w, nil
}

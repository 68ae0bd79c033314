// Package workflows holds mfaflow's Temporal workflows and the names they
// share with their callers: the task queue, update, signal and query names,
// and the custom search attributes of the appeal review queue.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
)

// TaskQueue is the one task queue mfaflow's workers poll.
const TaskQueue = "mfaflow"

// Custom search attributes of the review queue. They never hold PII.
const (
	SearchAppealStatus  = "MfaflowAppealStatus"  // Keyword: collecting_documents, pending_review, …
	SearchApplicantType = "MfaflowApplicantType" // Keyword: personal, enterprise
	SearchSubmittedAt   = "MfaflowSubmittedAt"   // Datetime
	SearchAssignee      = "MfaflowAssignee"      // Keyword: the claiming reviewer's id
	SearchSLABreached   = "MfaflowSLABreached"   // Bool
)

// SearchAttributes lists the custom search attributes with their types, for
// registering them on a namespace (dev stack, tests, operators).
var SearchAttributes = map[string]enumspb.IndexedValueType{
	SearchAppealStatus:  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchApplicantType: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchSubmittedAt:   enumspb.INDEXED_VALUE_TYPE_DATETIME,
	SearchAssignee:      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	SearchSLABreached:   enumspb.INDEXED_VALUE_TYPE_BOOL,
}

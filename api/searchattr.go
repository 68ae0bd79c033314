package api

import (
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// decodeSearchAttribute decodes a search attribute value. Search attributes
// are never encrypted (they hold no PII), so the default converter reads them.
func decodeSearchAttribute(p *commonpb.Payload, v any) error {
	return converter.GetDefaultDataConverter().FromPayload(p, v)
}

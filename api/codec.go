package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/store"
)

// handleCodec serves the Temporal UI's codec-server protocol for admins:
// POST …/codec/encode and …/codec/decode take {"payloads":[…]} (the
// protobuf JSON form of temporal.api.common.v1.Payloads) and answer the
// same shape. Every refusal is the JSON error of every route: 415
// unsupported_media_type for a body that is not JSON, 413 too_large past
// the body cap, 400 invalid_json for a body that is no Payloads, 400
// invalid_payload for a payload the key ring cannot open.
// An encode failure is the service's own (500).
func (s *Server) handleCodec() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Keys == nil {
			fail(c, s.log, errorf(http.StatusServiceUnavailable, "unavailable", "no key ring configured"))
			return
		}
		op := c.Request.URL.Path[strings.LastIndexByte(c.Request.URL.Path, '/')+1:]
		entry := store.AuditEntry{Actor: actor(c), Action: "codec." + op, Outcome: "ok", Details: map[string]string{"namespace": c.GetHeader("X-Namespace")}}
		out, err := s.runCodec(c, op)
		if err != nil {
			entry.Outcome = "invalid"
			entry.Details["reason"] = errCodeOf(err)
			s.audit(c, entry)
			fail(c, s.log, err)
			return
		}
		s.audit(c, entry)
		// The same encoding as the Temporal SDK's codec handler, which the
		// UI reads.
		b, err := json.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.Data(http.StatusOK, "application/json", b)
	}
}

// runCodec reads the Payloads body and encodes or decodes it (op "encode"
// or "decode"). It returns a client-visible *Error or a MaxBytesError.
func (s *Server) runCodec(c *gin.Context, op string) ([]*commonpb.Payload, error) {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json")
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, "invalid_json", "the body could not be read")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, errorf(http.StatusBadRequest, "invalid_json", `the body must be a JSON object: {"payloads":[…]}`)
	}
	for k := range top {
		if k != "payloads" {
			return nil, &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: k, Message: "unknown field"}
		}
	}
	var in commonpb.Payloads
	if protojson.Unmarshal(body, &in) != nil {
		// protojson's own text is not shown: it is no contract.
		return nil, errorf(http.StatusBadRequest, "invalid_json", `the body must be {"payloads":[{"metadata":{…},"data":"…"}]} with base64 bytes`)
	}
	cd := codec.Codec{Keys: s.deps.Keys}
	if op == "encode" {
		return cd.Encode(in.Payloads) // a failure here is the service's: 500
	}
	out, err := cd.Decode(in.Payloads)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid_payload", "a payload could not be decrypted with the service's keys")
	}
	return out, nil
}

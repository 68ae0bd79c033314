// Command openapilint checks the OpenAPI document (api/openapi.yaml) for
// `make lint`: kin-openapi loads and validates it (OpenAPI 3.1 with JSON
// Schema 2020-12, every $ref resolved, every example valid against its
// schema), and the project's own rules for the contract (issue 14) hold:
// every operation has an operationId, one of the tags console, applicant,
// reviewer, admin or ops, its security stated (security: [] on public
// routes), an example, and content for every answer it documents; every
// error answer (4xx, 5xx) is the Error body with its codes as an enum.
//
// Usage: go run ./internal/tools/openapilint [api/openapi.yaml]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "openapilint:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	path := "api/openapi.yaml"
	if len(args) > 0 {
		path = args[0]
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	problems, ops, err := lint(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %d problems:\n  %s", path, len(problems), strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(stdout, "openapilint: %s: valid, %d operations\n", path, ops)
	return nil
}

var tags = map[string]bool{"console": true, "applicant": true, "reviewer": true, "admin": true, "ops": true}

// lint loads and validates raw and lists what breaks the project's rules.
// It returns an error when the document does not load or is not valid.
func lint(raw []byte) (problems []string, ops int, err error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("load: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, 0, errors.New("want OpenAPI 3.1")
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, 0, fmt.Errorf("not valid: %w", err)
	}
	errSchema := doc.Components.Schemas["Error"]
	if errSchema == nil {
		return nil, 0, errors.New("no components.schemas.Error")
	}
	seenIDs := map[string]string{}
	paths := doc.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, path := range paths {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			ops++
			name := method + " " + path
			bad := func(format string, args ...any) { problems = append(problems, name+": "+fmt.Sprintf(format, args...)) }
			switch {
			case op.OperationID == "":
				bad("no operationId")
			case seenIDs[op.OperationID] != "":
				bad("operationId %s is also %s's", op.OperationID, seenIDs[op.OperationID])
			default:
				seenIDs[op.OperationID] = name
			}
			if len(op.Tags) != 1 || !tags[op.Tags[0]] {
				bad("tags %v: want one of console, applicant, reviewer, admin, ops", op.Tags)
			}
			if op.Security == nil {
				bad("no security: state it, security: [] on a public route")
			}
			if op.Responses == nil || op.Responses.Len() == 0 {
				bad("no responses")
				continue
			}
			example := op.RequestBody != nil && hasExample(op.RequestBody.Value.Content)
			for code, rr := range op.Responses.Map() {
				r := rr.Value
				status, err := strconv.Atoi(code)
				if err != nil {
					bad("response %q: want a status code, no default or range", code)
					continue
				}
				if len(r.Content) == 0 {
					if method != "HEAD" {
						bad("%d has no content", status)
					}
					continue
				}
				if status < 400 && hasExample(r.Content) { // a redirect is the success of a link
					example = true
				}
				if status >= 400 {
					if msg := errorAnswer(r, errSchema); msg != "" {
						bad("%d: %s", status, msg)
					}
				}
			}
			if !example && method != "HEAD" {
				bad("no example of a request or a success")
			}
		}
	}
	return problems, ops, nil
}

// hasExample reports whether some media type holds an example (its own or
// its schema's).
func hasExample(c openapi3.Content) bool {
	for _, mt := range c {
		if mt.Example != nil || len(mt.Examples) > 0 || (mt.Schema != nil && mt.Schema.Value != nil && mt.Schema.Value.Example != nil) {
			return true
		}
	}
	return false
}

// errorAnswer says what is wrong with an error answer: it must be JSON, the
// Error schema or a schema built on it, with its codes as an enum.
func errorAnswer(r *openapi3.Response, errSchema *openapi3.SchemaRef) string {
	mt := r.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || len(r.Content) != 1 {
		return "an error answer is application/json only"
	}
	codes := errorCodes(mt.Schema.Value)
	if len(codes) == 0 {
		return "the error codes are not an enum (allOf: [Error, {error: {code: {enum}}}])"
	}
	for _, c := range codes {
		if err := errSchema.Value.VisitJSON(map[string]any{"error": map[string]any{"code": c, "message": "m"}}); err != nil {
			return fmt.Sprintf("code %q does not fit the Error schema", c)
		}
	}
	return ""
}

// errorCodes finds the enum of error.code in s, its allOf parts or oneOf
// branches.
func errorCodes(s *openapi3.Schema) []string {
	var out []string
	if e := s.Properties["error"]; e != nil && e.Value != nil {
		if c := e.Value.Properties["code"]; c != nil && c.Value != nil {
			for _, v := range c.Value.Enum {
				if str, ok := v.(string); ok {
					out = append(out, str)
				}
			}
		}
	}
	for _, parts := range []openapi3.SchemaRefs{s.AllOf, s.OneOf} {
		for _, p := range parts {
			if p.Value != nil {
				out = append(out, errorCodes(p.Value)...)
			}
		}
	}
	return out
}

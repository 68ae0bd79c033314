package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/client"
)

// TestClientCoversConsole fails when the served document's console
// operations and the client's differ: a new console operation needs its
// method here.
func TestClientCoversConsole(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var console []string
	for _, item := range doc.Paths {
		for method, node := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				OperationID string   `yaml:"operationId"`
				Tags        []string `yaml:"tags"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(op.Tags, "console") {
				console = append(console, op.OperationID)
			}
		}
	}
	slices.Sort(console)
	have := slices.Sorted(slices.Values(client.Operations))
	if !slices.Equal(console, have) {
		t.Fatalf("the document's console operations %v, the client's %v", console, have)
	}
}

// TestErrorAnswer reads the document's error body, its Retry-After and
// an answer that is no error body.
func TestErrorAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"locked","message":"too many wrong codes; try again later"}}`))
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, "k").Verify(context.Background(), "acct-1", client.VerifyRequest{Code: "123456", Purpose: "login"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 429 || e.Code != "locked" || e.RetryAfter != time.Minute || !client.IsCode(err, "locked") {
		t.Fatalf("err = %#v", err)
	}
	_, err = client.New(srv.URL, "other").MFA(context.Background(), "acct-1")
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != "unexpected_answer" {
		t.Fatalf("err = %#v", err)
	}
}

package api

import (
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIListsEveryRoute fails when a route is added without documenting it.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	s := NewServer(Deps{Dev: true})
	for _, r := range s.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if !strings.HasPrefix(path, "/v1/") && !strings.HasPrefix(path, "/dev/") && !strings.HasSuffix(path, "z") && path != "/metrics" && path != "/openapi.yaml" {
			continue // web pages and their assets are not part of the JSON API
		}
		path = param.ReplaceAllString(path, "{$1}")
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("openapi.yaml lacks path %s", path)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("openapi.yaml lacks %s %s", method, path)
		}
	}
}

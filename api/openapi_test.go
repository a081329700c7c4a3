package api

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// ginParam matches a Gin path parameter (:id or *path), written {id} in OpenAPI.
var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPICoversRoutes fails for any route (method and path) the server registers that the
// OpenAPI document does not describe, and for any operation the document describes that no
// route serves: the document and the router cannot drift apart.
func TestOpenAPICoversRoutes(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	routed := map[string]bool{}
	for _, r := range f.server.Routes() {
		path := ginParam.ReplaceAllString(r.Path, "{$1}")
		method := strings.ToLower(r.Method)
		routed[method+" "+path] = true
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("route %s %s is missing from openapi.json (as %s %s)", r.Method, r.Path, method, path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			if !routed[method+" "+path] {
				t.Errorf("openapi.json describes %s %s, which no route serves", method, path)
			}
		}
	}
	if rec := f.do("GET", "/v1/openapi.json", "", ""); rec.Code != 200 || rec.Body.String() != string(raw) {
		t.Errorf("GET /v1/openapi.json = %d, not the document", rec.Code)
	}
}

// TestMergeSectionRejectsDuplicates proves a part document cannot redefine a path of the base.
func TestMergeSectionRejectsDuplicates(t *testing.T) {
	base := map[string]any{"paths": map[string]any{"/a": map[string]any{}}}
	if err := mergeSection(base, map[string]any{"paths": map[string]any{"/b": map[string]any{}}}, "paths", "part"); err != nil {
		t.Fatal(err)
	}
	if _, ok := lookupObject(base, "paths", false)["/b"]; !ok {
		t.Fatal("merged path /b missing")
	}
	if err := mergeSection(base, map[string]any{"paths": map[string]any{"/a": map[string]any{}}}, "paths", "part"); err == nil {
		t.Fatal("redefining /a was accepted")
	}
	if err := mergeSection(base, map[string]any{"components": map[string]any{"schemas": map[string]any{"X": 1}}}, "components/schemas", "part"); err != nil {
		t.Fatal(err)
	}
	if lookupObject(base, "components/schemas", false)["X"] != 1 {
		t.Fatal("schema X not merged into a base without components")
	}
}

// TestOpenAPIDocumentsEveryKind proves the kind enums of the document come from the registry:
// a kind added there is documented without editing openapi.json.
func TestOpenAPIDocumentsEveryKind(t *testing.T) {
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, where := range []struct{ path, method, param string }{
		{"/v1/operations/{id}", "post", "id"},
		{"/v1/operations", "get", "kind"},
	} {
		op := operationObject(doc, where.path, where.method)
		params, _ := op["parameters"].([]any)
		var enum []any
		for _, p := range params {
			if pm := p.(map[string]any); pm["name"] == where.param {
				enum, _ = pm["schema"].(map[string]any)["enum"].([]any)
			}
		}
		var got []string
		for _, e := range enum {
			got = append(got, e.(string))
		}
		if strings.Join(got, ",") != strings.Join(workflows.KindNames(), ",") {
			t.Errorf("%s %s parameter %s enum %v, registry has %v", where.method, where.path, where.param, got, workflows.KindNames())
		}
	}
}

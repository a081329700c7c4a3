package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops/workflows"
)

// The OpenAPI document is written by hand: openapi.json holds the base and the routes of this
// file set; other parts of the API (consoles, admission) add their paths and schemas in their
// own openapi_<part>.json, merged in at load. TestOpenAPICoversRoutes fails for any route
// missing from the result.
//
//go:embed openapi*.json
var openapiFiles embed.FS

var openapiDoc = sync.OnceValues(loadOpenAPI)

// OpenAPI returns the merged OpenAPI 3 document as JSON.
func OpenAPI() ([]byte, error) { return openapiDoc() }

func loadOpenAPI() ([]byte, error) {
	base, err := readJSONObject("openapi.json")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(openapiFiles, "openapi_*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		part, err := readJSONObject(name)
		if err != nil {
			return nil, err
		}
		for _, section := range []string{"paths", "components/schemas"} {
			if err := mergeSection(base, part, section, name); err != nil {
				return nil, err
			}
		}
	}
	describeKinds(base)
	return json.MarshalIndent(base, "", "  ")
}

// describeKinds fills the operation kinds into the document from the registry, so that a new
// kind is documented by its registry entry alone: the enum and description of the kind in
// POST /v1/operations/{id} and the enum of the kind filter of GET /v1/operations.
func describeKinds(doc map[string]any) {
	names := workflows.KindNames()
	enum := make([]any, len(names))
	desc := "For POST, the operation kind to start:"
	for i, k := range workflows.Kinds() {
		enum[i] = k.Name
		desc += fmt.Sprintf(" %s (task queue %s): %s", k.Name, k.TaskQueue, k.Description)
	}
	desc += " (OpenAPI allows one parameter name per path position, so the kind shares the name of the operation id that GET takes here.)"
	set := func(path, method, param string, description bool) {
		params, _ := operationObject(doc, path, method)["parameters"].([]any)
		for _, p := range params {
			pm, _ := p.(map[string]any)
			if pm == nil || pm["name"] != param {
				continue
			}
			pm["schema"] = map[string]any{"type": "string", "enum": enum}
			if description {
				pm["description"] = desc
			}
		}
	}
	set("/v1/operations/{id}", "post", "id", true)
	set("/v1/operations", "get", "kind", false)
}

func readJSONObject(name string) (map[string]any, error) {
	raw, err := openapiFiles.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return doc, nil
}

// mergeSection copies the entries of a section ("paths" or "components/schemas") of part into
// base; an entry defined twice is an error, so that two files cannot silently disagree.
func mergeSection(base, part map[string]any, section, name string) error {
	src := lookupObject(part, section, false)
	if src == nil {
		return nil
	}
	dst := lookupObject(base, section, true)
	for k, v := range src {
		if _, dup := dst[k]; dup {
			return fmt.Errorf("%s: %s %q is already defined", name, section, k)
		}
		dst[k] = v
	}
	return nil
}

// lookupObject walks a slash-separated path of object keys, creating missing objects when
// create is set; nil when a key is missing (and not created) or not an object.
func lookupObject(doc map[string]any, path string, create bool) map[string]any {
	cur := doc
	for _, key := range strings.Split(path, "/") {
		next, ok := cur[key].(map[string]any)
		if !ok {
			if !create {
				return nil
			}
			next = map[string]any{}
			cur[key] = next
		}
		cur = next
	}
	return cur
}

// operationObject returns the operation object of method on path, nil if not documented.
// (Path keys contain '/', so lookupObject cannot walk to them.)
func operationObject(doc map[string]any, path, method string) map[string]any {
	item, _ := lookupObject(doc, "paths", false)[path].(map[string]any)
	op, _ := item[method].(map[string]any)
	return op
}

func serveOpenAPI(c *gin.Context) {
	doc, err := OpenAPI()
	if err != nil {
		WriteError(c, fmt.Errorf("openapi document: %w", err))
		return
	}
	c.Data(http.StatusOK, "application/json", doc)
}

package cloudsim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// maxQueryBody bounds an EC2 Query request body; the SDK's largest realistic call is far below.
const maxQueryBody = 1 << 20

// maxListItems bounds a numbered list (InstanceId.N, Filter.N.Value.M): EC2 itself caps them
// in the low thousands.
const maxListItems = 1000

// query is a parsed EC2 Query request: Action, Version and the flattened parameters.
type query struct {
	Action string
	Params url.Values
}

// parseQuery parses a form-encoded EC2 Query body. It accepts what the SDK sends and rejects
// anything without an Action.
func parseQuery(body []byte) (*query, *apiError) {
	if len(body) > maxQueryBody {
		return nil, errInvalidParameter("request body too large")
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &apiError{Code: "MalformedQueryString", Message: "malformed query string: " + err.Error(), Status: 400}
	}
	action := vals.Get("Action")
	if action == "" {
		return nil, &apiError{Code: "MissingAction", Message: "the request must contain the parameter Action", Status: 400}
	}
	return &query{Action: action, Params: vals}, nil
}

func (q *query) get(name string) string { return q.Params.Get(name) }

// list returns name.1, name.2, ... until the first gap, as the SDK numbers them from 1.
func (q *query) list(name string) ([]string, *apiError) {
	var out []string
	for i := 1; ; i++ {
		v, ok := q.Params[name+"."+strconv.Itoa(i)]
		if !ok {
			return out, nil
		}
		if i > maxListItems {
			return nil, errInvalidParameter(fmt.Sprintf("too many values for %s", name))
		}
		out = append(out, v[0])
	}
}

// indexes returns the N of every name.N.* present, so struct lists (Filter.N.Name) are found.
func (q *query) indexes(name string) ([]int, *apiError) {
	seen := map[int]bool{}
	prefix := name + "."
	for k := range q.Params {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		rest := k[len(prefix):]
		if dot := strings.IndexByte(rest, '.'); dot >= 0 {
			rest = rest[:dot]
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 {
			return nil, errInvalidParameter(fmt.Sprintf("invalid parameter %q", k))
		}
		if n > maxListItems {
			return nil, errInvalidParameter(fmt.Sprintf("too many values for %s", name))
		}
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}

func (q *query) int32(name string, def int32) (int32, *apiError) {
	v := q.get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, errInvalidParameter(fmt.Sprintf("Value (%s) for parameter %s is invalid. Expected an integer.", v, name))
	}
	return int32(n), nil
}

func (q *query) bool(name string) (bool, *apiError) {
	switch strings.ToLower(q.get(name)) {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errInvalidParameter(fmt.Sprintf("Value (%s) for parameter %s is invalid. Expected a boolean.", q.get(name), name))
}

// filter is one Filter.N: a name and the values of which any may match, compiled once per
// request rather than once per resource.
type filter struct {
	Name     string
	Patterns []*regexp.Regexp
}

func (q *query) filters() ([]filter, *apiError) {
	idx, err := q.indexes("Filter")
	if err != nil {
		return nil, err
	}
	var out []filter
	for _, n := range idx {
		p := "Filter." + strconv.Itoa(n)
		name := q.get(p + ".Name")
		if name == "" {
			return nil, errInvalidParameter(fmt.Sprintf("%s.Name is required", p))
		}
		vals, err := q.list(p + ".Value")
		if err != nil {
			return nil, err
		}
		f := filter{Name: name}
		for _, v := range vals {
			f.Patterns = append(f.Patterns, wildcard(v))
		}
		out = append(out, f)
	}
	return out, nil
}

// tagSpec is one TagSpecification.N.
type tagSpec struct {
	ResourceType string
	Tags         tags
}

func (q *query) tagSpecs(allowed ...string) ([]tagSpec, *apiError) {
	idx, err := q.indexes("TagSpecification")
	if err != nil {
		return nil, err
	}
	var out []tagSpec
	for _, n := range idx {
		p := "TagSpecification." + strconv.Itoa(n)
		rt := q.get(p + ".ResourceType")
		if !slices.Contains(allowed, rt) {
			return nil, errInvalidParameter(fmt.Sprintf("'%s' is not a valid taggable resource type for this operation.", rt))
		}
		ts, err := q.tagList(p + ".Tag")
		if err != nil {
			return nil, err
		}
		out = append(out, tagSpec{ResourceType: rt, Tags: ts})
	}
	return out, nil
}

// tagList reads name.N.Key / name.N.Value pairs.
func (q *query) tagList(name string) (tags, *apiError) {
	idx, err := q.indexes(name)
	if err != nil {
		return nil, err
	}
	var ts tags
	for _, n := range idx {
		p := name + "." + strconv.Itoa(n)
		k := q.get(p + ".Key")
		if k == "" {
			return nil, errInvalidParameter(fmt.Sprintf("%s.Key is required", p))
		}
		if len(k) > 128 || len(q.get(p+".Value")) > 256 {
			return nil, errInvalidParameter(fmt.Sprintf("tag %s is too long", p))
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errInvalidParameter("Tag keys starting with 'aws:' are reserved for internal use")
		}
		ts.set(k, q.get(p+".Value"))
	}
	return ts, nil
}

func tagsFor(specs []tagSpec, resourceType string) tags {
	var ts tags
	for _, sp := range specs {
		if sp.ResourceType == resourceType {
			for _, t := range sp.Tags {
				ts.set(t.Key, t.Value)
			}
		}
	}
	return ts
}

// paramHash fingerprints a request's parameters without its ClientToken, to tell a retry from
// a different request that reuses a token.
func (q *query) paramHash() string {
	keys := make([]string, 0, len(q.Params))
	for k := range q.Params {
		if k != "ClientToken" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, q.Params[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// matchFilters reports whether a resource passes every filter; values gives a resource's
// values for a filter name and false when the name is not a filter of this resource type.
func matchFilters(fs []filter, values func(name string) ([]string, bool)) (bool, *apiError) {
	for _, f := range fs {
		have, ok := values(f.Name)
		if !ok && strings.HasPrefix(f.Name, "tag:") {
			ok = true
		}
		if !ok {
			return false, errInvalidParameter(fmt.Sprintf("The filter '%s' is invalid", f.Name))
		}
		if !anyMatch(f.Patterns, have) {
			return false, nil
		}
	}
	return true, nil
}

// anyMatch: a filter matches when any of its values, with EC2's * and ? wildcards, matches
// any of the resource's values.
func anyMatch(patterns []*regexp.Regexp, have []string) bool {
	for _, re := range patterns {
		for _, h := range have {
			if re.MatchString(h) {
				return true
			}
		}
	}
	return false
}

// wildcard compiles an EC2 filter value: * is any run of characters (slashes included), ? one
// character, everything else literal.
func wildcard(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// tagFilterValues implements tag:K, tag-key and tag-value for any resource.
func tagFilterValues(ts tags, name string) ([]string, bool) {
	switch {
	case strings.HasPrefix(name, "tag:"):
		if v, ok := ts.get(name[4:]); ok {
			return []string{v}, true
		}
		return nil, true
	case name == "tag-key":
		var out []string
		for _, t := range ts {
			out = append(out, t.Key)
		}
		return out, true
	case name == "tag-value":
		var out []string
		for _, t := range ts {
			out = append(out, t.Value)
		}
		return out, true
	}
	return nil, false
}

// page cuts a sorted result list by MaxResults/NextToken; the token is the next offset.
func page[T any](q *query, items []T) ([]T, string, *apiError) {
	start := 0
	if tok := q.get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", &apiError{Code: "InvalidPaginationToken", Message: "The pagination token is invalid.", Status: 400}
		}
		start = n
	}
	max, aerr := q.int32("MaxResults", 0)
	if aerr != nil {
		return nil, "", aerr
	}
	if max < 0 {
		return nil, "", errInvalidParameter("MaxResults must be positive")
	}
	items = items[start:]
	if max == 0 || int(max) >= len(items) {
		return items, "", nil
	}
	return items[:max], strconv.Itoa(start + int(max)), nil
}

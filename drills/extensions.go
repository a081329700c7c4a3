package drills

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Report functions that scenarios and operation kinds add to the base report: the one place
// they are registered. An entry named "kind:<kind>" applies to every drill that started an
// operation of that kind; any other name applies to the scenario of that name and to those
// that list it under `report:`. Keys lists what the function adds: they may be a scenario's
// goals, and may not be base keys or another function's (TestExtensionKeys).
var extensions = map[string]Extension{
	"heartbleed":                  {Keys: heartbleedKeys, Numeric: heartbleedNumeric, Func: heartbleedReport},
	"kind:release":                {Keys: releaseKeys, Numeric: releaseNumeric, Func: releaseReport},
	"storage-change-then-failure": {Keys: storageChangeKeys, Numeric: storageChangeNumeric, Func: storageChangeReport},
}

// Extension is a report function with the keys it adds.
type Extension struct {
	Keys []string
	// Numeric are the keys among Keys that hold numbers (a scenario may set goals on them).
	Numeric []string
	Func    ReportFunc
}

// ReportFunc computes extra keys of a drill's report.
type ReportFunc func(in ReportInput, base Report) (map[string]any, error)

const kindPrefix = "kind:"

// operationOf is the last operation of the kind the drill started: what a kind's report
// function reads.
func (in ReportInput) operationOf(kind string) (*Run, error) {
	var op *Run
	for i := range in.Operations {
		if in.Kinds[in.Operations[i].Type] == kind {
			op = &in.Operations[i]
		}
	}
	if op == nil {
		return nil, fmt.Errorf("the drill started no %s operation", kind)
	}
	return op, nil
}

// ExtensionNames lists the registered report functions, sorted.
func ExtensionNames() []string {
	var names []string
	for n := range extensions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// extensionsFor are the report functions that apply to a drill, sorted by name.
func extensionsFor(scenario string, listed []string, kinds []string) []string {
	var names []string
	for n := range extensions {
		k, isKind := strings.CutPrefix(n, kindPrefix)
		if (isKind && slices.Contains(kinds, k)) || (!isKind && (n == scenario || slices.Contains(listed, n))) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// NumericReportKeys are the base report's keys that hold numbers: a scenario may set goals
// on them.
var NumericReportKeys = []string{"rto_seconds", "detect_seconds", "no_hot_backup_seconds", "lost_bytes",
	"interlock_violations", "duplicate_resources", "control_plane_seconds"}

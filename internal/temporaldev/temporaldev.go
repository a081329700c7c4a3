// Package temporaldev holds what every Temporal dev server Anyops starts (in `anyops dev` and
// in tests) is started with, so both run the same way.
package temporaldev

// Version of the Temporal CLI that `make build` installs into bin/temporal. v1.5.1 is the
// newest that `go install` builds; later ones carry replace directives.
const Version = "v1.5.1"

// SearchAttributes are the custom keyword search attributes the workflows set, so ops can
// filter in the Temporal UI ("Cluster = 'live'").
var SearchAttributes = []string{"Cluster", "Zone", "Server", "Incident", "Console"}

// Args returns the dev server arguments beyond address and database: raised history poll
// rates (the default 20/s adds ~50 ms to every workflow step) and the search attributes.
func Args() []string {
	args := []string{
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=2000",
		"--dynamic-config-value", "history.timerProcessorMaxPollRPS=2000",
		"--dynamic-config-value", "history.visibilityProcessorMaxPollRPS=2000",
		"--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
		"--dynamic-config-value", "frontend.enableExecuteMultiOperation=true",
		"--dynamic-config-value", "system.enableEagerWorkflowStart=true",
	}
	for _, name := range SearchAttributes {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	return args
}

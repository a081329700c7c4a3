package activities

import (
	"testing"
	"time"

	"github.com/anyops/anyops/cloudsim"
)

// cloudsimBackends is the simulated cloud: snapshots take simulated time (so progress is seen
// rising), ClientToken is honoured, and faults can be injected. Its clock runs at
// cloudsim.TestSpeed, so a poll every 20 ms real is every 20 s simulated.
func cloudsimBackends() []cloudBackend {
	return []cloudBackend{{
		name: "cloudsim",
		start: func(t *testing.T) string {
			_, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{})
			return endpoint
		},
		pollInterval:      20 * time.Millisecond,
		simulatesTime:     true,
		honorsClientToken: true,
	}}
}

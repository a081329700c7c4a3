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
	var sim *cloudsim.Sim
	return []cloudBackend{{
		name: "cloudsim",
		start: func(t *testing.T) string {
			s, endpoint := cloudsim.NewTestServer(t, cloudsim.Config{})
			sim = s
			return endpoint
		},
		fill: func(t *testing.T, volumeID string, gib float64) {
			if _, err := sim.FillVolume(volumeID, gib); err != nil {
				t.Fatalf("fill %s: %v", volumeID, err)
			}
		},
		pollInterval:      20 * time.Millisecond,
		simulatesTime:     true,
		honorsClientToken: true,
	}}
}

package jail

import (
	"context"
	"testing"
)

// BenchmarkStartToExit measures /bin/true in a full sandbox with the free plan's cgroup
// limits, from Start until Wait returns (Destroy excluded, as in bench/sandbox). Here the
// test binary is the init, which is slower to start than anyops-sandbox-init: use
// bench/sandbox.sh for the comparison with bubblewrap.
func BenchmarkStartToExit(b *testing.B) {
	f := newFixture(b)
	spec := f.spec(b, "")
	spec.Command = []string{"/bin/true"}
	for b.Loop() {
		sb, err := f.m.Start(context.Background(), spec)
		if err != nil {
			b.Fatal(err)
		}
		if code, err := sb.Wait(); err != nil || code != 0 {
			b.Fatalf("exit %d, %v", code, err)
		}
		b.StopTimer()
		if err := sb.Destroy(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

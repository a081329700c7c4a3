package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// TestBuildServerBootstrapBoundIsTheHosts proves the bootstrap's bound on the host (SSM's
// executionTimeout) is the unscaled build timeout even under a timing scaled for cloudsim's
// speed: the host's clock is simulated already, and a bound divided by the speed once more cut
// the 19-minute bootstrap at 45 simulated seconds (a drill's july-2014 then measured a
// replacement that was never built).
func TestBuildServerBootstrapBoundIsTheHosts(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BuildServer, workflow.RegisterOptions{Name: BuildServerWorkflowType})
	var (
		cloud *activities.Cloud
		hosts *activities.Hosts
		inv   *activities.Inventory
	)
	env.RegisterActivity(cloud)
	env.RegisterActivity(hosts)
	env.RegisterActivity(inv)
	env.OnActivity(cloud.RunInstance, mock.Anything, mock.Anything).Return(activities.Instance{ID: "i-0123456789abcdef0", PrivateIP: "10.0.1.10"}, nil)
	env.OnActivity(cloud.WaitInstanceRunning, mock.Anything, mock.Anything).Return(activities.Instance{ID: "i-0123456789abcdef0"}, nil)
	env.OnActivity(hosts.HostName, mock.Anything, mock.Anything).Return("ip-10-0-1-10", nil)
	env.OnActivity(inv.RecordFleet, mock.Anything, mock.Anything).Return(nil)
	var bound activities.BootstrapInput
	env.OnActivity(hosts.Bootstrap, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BootstrapInput) (activities.BootstrapOutput, error) {
			bound = in
			return activities.BootstrapOutput{}, nil
		})
	env.ExecuteWorkflow(BuildServerWorkflowType, BuildServerInput{Scope: "test",
		Server: activities.PlannedServer{Name: "drill-1-file2", Role: anyops.RoleFile, Zone: "us-east-1a", Cluster: "drill-1", InstanceType: "m5.2xlarge"},
		Timing: RecoveryTiming{}.Scaled(60)})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if bound.Timeout != DefaultBuildTimeout {
		t.Errorf("bootstrap bounded at %s on the host, want the unscaled %s", bound.Timeout, DefaultBuildTimeout)
	}
}

package activities

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
)

// silentAction stands in front of cloudsim: while armed, the EC2 action it names is carried
// out and its answer withheld until the caller gives up, as the chaos harness's crash points
// do to a worker that stays alive.
type silentAction struct {
	next   http.Handler
	action atomic.Value // string; "" when disarmed
}

func (s *silentAction) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	q, _ := url.ParseQuery(string(body))
	if a, _ := s.action.Load().(string); a == "" || q.Get("Action") != a {
		s.next.ServeHTTP(w, r)
		return
	}
	s.next.ServeHTTP(httptest.NewRecorder(), r)
	<-r.Context().Done()
}

// TestTeardownCallWithoutAnswerFailsFast: a DeleteVolume that cloudsim carries out but never
// answers (the worker alive, so its heartbeat goes on) fails DeleteClusterVolumes' attempt
// within the teardown's call timeout, retryably, instead of holding it for the HTTP client's
// minute; the retry finds that volume going and deletes the rest.
func TestTeardownCallWithoutAnswerFailsFast(t *testing.T) {
	ctx := context.Background()
	sim, err := cloudsim.New(cloudsim.Config{Speed: cloudsim.TestSpeed})
	if err != nil {
		t.Fatal(err)
	}
	silent := &silentAction{next: sim.Handler()}
	srv := httptest.NewServer(silent)
	t.Cleanup(func() { srv.Close(); _ = sim.Close() })
	clients, err := NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const cluster = "drill-9"
	store := openStore(t)
	if _, err := store.UpsertZone(ctx, inventory.Zone{Name: zoneA, Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertCluster(ctx, inventory.Cluster{Name: cluster, Zone: zoneA, State: anyops.ClusterRetired}); err != nil {
		t.Fatal(err)
	}
	var volumes []string
	for range 3 {
		out, err := clients.EC2.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zoneA), Size: aws.Int32(10),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String(anyops.TagCluster), Value: aws.String(cluster)}}}}})
		if err != nil {
			t.Fatal(err)
		}
		volumes = append(volumes, aws.ToString(out.VolumeId))
	}
	time.Sleep(100 * time.Millisecond) // 10 simulated seconds: available

	const callTimeout = 500 * time.Millisecond
	td := &Teardown{Store: store, Clients: clients, CallTimeout: callTimeout}
	env, _ := activityEnv(t, td)
	in := DeleteClusterVolumesInput{Cluster: cluster, Override: Override{By: "drill/9", Reason: "drill teardown: throw-away data"}}
	silent.action.Store("DeleteVolume")
	start := time.Now()
	_, err = callErr[DeleteClusterVolumesResult](env, td.DeleteClusterVolumes, in)
	took := time.Since(start)
	var app *temporal.ApplicationError
	switch {
	case err == nil || !strings.Contains(err.Error(), "no answer within"):
		t.Fatalf("DeleteClusterVolumes with DeleteVolume unanswered: %v, want it to fail for want of an answer", err)
	case errors.As(err, &app) && app.NonRetryable():
		t.Fatalf("the attempt failed non-retryably: %v", err)
	case took > 10*callTimeout:
		t.Fatalf("the attempt took %s to give up, want about the call timeout %s", took, callTimeout)
	}
	t.Logf("attempt gave up after %s: %v", took.Round(time.Millisecond), err)

	silent.action.Store("")
	res, err := callErr[DeleteClusterVolumesResult](env, td.DeleteClusterVolumes, in)
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if len(res.Deleted) != len(volumes)-1 {
		t.Fatalf("the retry deleted %v of %v, want all but the one the first attempt deleted", res.Deleted, volumes)
	}
}

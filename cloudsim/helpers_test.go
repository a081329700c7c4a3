package cloudsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// frozen is a clock speed at which simulated time effectively stands still, so a test moves
// it only with Advance and can assert exact progress.
const frozen = 1e-9

// fixture is a cloudsim behind httptest with real aws-sdk-go-v2 clients pointed at it.
type fixture struct {
	sim *Sim
	url string
	ec2 *ec2.Client
	ssm *ssm.Client
	ctx context.Context
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	sim, url := NewTestServer(t, cfg)
	return clientsFor(t, sim, url)
}

// fastRetryer keeps the SDK's standard retry rules (throttling codes, 5xx) with short backoff.
func fastRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxBackoff = 20 * time.Millisecond
	})
}

func clientsFor(t *testing.T, sim *Sim, url string) *fixture {
	t.Helper()
	creds := credentials.NewStaticCredentialsProvider("AKIDCLOUDSIM", "secret", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{
		sim: sim, url: url, ctx: ctx,
		ec2: ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds,
			HTTPClient: http.DefaultClient, Retryer: fastRetryer()}),
		ssm: ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds,
			HTTPClient: http.DefaultClient, Retryer: fastRetryer()}),
	}
}

// apiCode is the AWS error code of err, "" when err is nil.
func apiCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an AWS API error: %v", err)
	}
	return ae.ErrorCode()
}

// run launches one m5.large (a Nitro type) in zone with tags and returns its id.
func (f *fixture) run(t *testing.T, zone string, tags map[string]string) string {
	t.Helper()
	return f.runType(t, zone, ec2types.InstanceTypeM5Large, tags)
}

// runType launches one instance of the type in zone with tags and returns its id.
func (f *fixture) runType(t *testing.T, zone string, itype ec2types.InstanceType, tags map[string]string) string {
	t.Helper()
	in := &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType: itype, Placement: &ec2types.Placement{AvailabilityZone: aws.String(zone)}}
	if len(tags) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: toTags(tags)}}
	}
	out, err := f.ec2.RunInstances(f.ctx, in)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return *out.Instances[0].InstanceId
}

func toTags(m map[string]string) []ec2types.Tag {
	var out []ec2types.Tag
	for k, v := range m {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

func (f *fixture) instance(t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeInstances %s: %v", id, err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s: want one instance, got %+v", id, out.Reservations)
	}
	return out.Reservations[0].Instances[0]
}

func (f *fixture) volume(t *testing.T, id string) ec2types.Volume {
	t.Helper()
	out, err := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeVolumes %s: %v", id, err)
	}
	return out.Volumes[0]
}

func (f *fixture) createVolume(t *testing.T, zone string, gib int32, tags map[string]string) string {
	t.Helper()
	in := &ec2.CreateVolumeInput{AvailabilityZone: aws.String(zone), Size: aws.Int32(gib), VolumeType: ec2types.VolumeTypeGp3}
	if len(tags) > 0 {
		in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: toTags(tags)}}
	}
	out, err := f.ec2.CreateVolume(f.ctx, in)
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	return *out.VolumeId
}

func (f *fixture) attach(t *testing.T, vol, inst, dev string) {
	t.Helper()
	if _, err := f.ec2.AttachVolume(f.ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(inst), Device: aws.String(dev)}); err != nil {
		t.Fatalf("AttachVolume %s to %s: %v", vol, inst, err)
	}
}

// shell runs a script on one instance through SSM and waits for its result.
func (f *fixture) shell(t *testing.T, inst string, lines ...string) (stdout, stderr string, code int32, status string) {
	t.Helper()
	out, err := f.ssm.SendCommand(f.ctx, sendShell(inst, lines...))
	if err != nil {
		t.Fatalf("SendCommand %q: %v", lines, err)
	}
	id := out.Command.CommandId
	for range 10000 {
		inv, err := f.ssm.GetCommandInvocation(f.ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(inst)})
		if err != nil {
			t.Fatalf("GetCommandInvocation: %v", err)
		}
		if inv.Status != "InProgress" && inv.Status != "Pending" {
			return aws.ToString(inv.StandardOutputContent), aws.ToString(inv.StandardErrorContent), inv.ResponseCode, string(inv.Status)
		}
		f.sim.Advance(time.Second)
	}
	t.Fatalf("command %q never finished", lines)
	return
}

// post sends a raw request to the sim and returns status and body.
func (f *fixture) post(t *testing.T, path, contentType, body string, header map[string]string) (int, string) {
	t.Helper()
	return f.send(t, http.MethodPost, path, contentType, body, header)
}

// put sends a JSON body with PUT.
func (f *fixture) put(t *testing.T, path, body string) (int, string) {
	t.Helper()
	return f.send(t, http.MethodPut, path, "application/json", body, nil)
}

func (f *fixture) send(t *testing.T, method, path, contentType, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(f.ctx, method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// injectFault posts a fault to /_sim/faults and returns its id.
func (f *fixture) injectFault(t *testing.T, fault map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(fault)
	status, resp := f.post(t, "/_sim/faults", "application/json", string(body), nil)
	if status != http.StatusCreated {
		t.Fatalf("POST /_sim/faults %s: %d %s", body, status, resp)
	}
	var out Fault
	if err := json.Unmarshal([]byte(resp), &out); err != nil {
		t.Fatal(err)
	}
	return out.ID
}

func (f *fixture) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := http.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func sendShell(inst string, lines ...string) *ssm.SendCommandInput {
	return &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{inst},
		Parameters: map[string][]string{"commands": lines}}
}

// shellStep is one script of a table-driven host test and what it must end with.
type shellStep struct {
	inst     string
	script   string
	wantCode int32
	wantText string // substring of stdout + stderr
}

// runSteps runs the steps in order and stops at the first that ends otherwise.
func (f *fixture) runSteps(t *testing.T, steps []shellStep) {
	t.Helper()
	for _, st := range steps {
		out, stderr, code, _ := f.shell(t, st.inst, st.script)
		if code != st.wantCode || !strings.Contains(out+stderr, st.wantText) {
			t.Fatalf("%s on %s: exit %d\n%s%s\nwant exit %d containing %q", st.script, st.inst, code, out, stderr, st.wantCode, st.wantText)
		}
	}
}

package cloudsim

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/anyops/anyops/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m)
}

// TestContractWithMoto runs the same SDK calls against moto, an independent EC2
// implementation, and against cloudsim, and compares what both must agree on: the response
// shapes the SDK decodes and the error codes. Timing is where they differ on purpose (moto
// finishes everything at once), so summaries leave states that move with time out.
func TestContractWithMoto(t *testing.T) {
	motoURL := testenv.Moto(t)
	sim, simURL := NewTestServer(t, Config{Speed: frozen})
	targets := map[string]*fixture{
		"moto":     clientsFor(t, nil, motoURL),
		"cloudsim": clientsFor(t, sim, simURL),
	}
	steps := []struct {
		name string
		run  func(t *testing.T, f *fixture) string
	}{
		{"zones of the region", func(t *testing.T, f *fixture) string {
			out, err := f.ec2.DescribeAvailabilityZones(f.ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1a", "us-east-1b"}})
			if err != nil {
				return apiCode(t, err)
			}
			var s []string
			for _, z := range out.AvailabilityZones {
				s = append(s, fmt.Sprintf("%s/%s/%s", *z.ZoneName, *z.RegionName, z.State))
			}
			return strings.Join(s, " ")
		}},
		{"launch with tags and a data volume", func(t *testing.T, f *fixture) string {
			out, err := f.ec2.RunInstances(f.ctx, &ec2.RunInstancesInput{ImageId: aws.String(motoAMI), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
				InstanceType: ec2types.InstanceTypeM5Large, Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-east-1b")},
				BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(50)}}},
				TagSpecifications:   []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: toTags(map[string]string{"Cluster": "c1"})}}})
			if err != nil {
				return apiCode(t, err)
			}
			var s []string
			for _, in := range out.Instances {
				s = append(s, fmt.Sprintf("%s %s %s ip=%v tags=%d", prefix(*in.InstanceId), in.InstanceType, *in.Placement.AvailabilityZone,
					in.PrivateIpAddress != nil, len(in.Tags)))
			}
			return strings.Join(s, "; ")
		}},
		{"describe by tag filter", func(t *testing.T, f *fixture) string {
			// A key without a colon and no availability-zone filter: moto handles neither as
			// EC2 does (cloudsim's own tests cover both).
			out, err := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
				{Name: aws.String("tag:Cluster"), Values: []string{"c1"}}, {Name: aws.String("instance-type"), Values: []string{"m5.large"}}}})
			if err != nil {
				return apiCode(t, err)
			}
			n, vols := 0, 0
			for _, r := range out.Reservations {
				for _, in := range r.Instances {
					n++
					for _, b := range in.BlockDeviceMappings {
						if *b.DeviceName == "/dev/sdf" && b.Ebs != nil && b.Ebs.VolumeId != nil {
							vols++
						}
					}
				}
			}
			return fmt.Sprintf("reservations=%d instances=%d data-volumes=%d", len(out.Reservations), n, vols)
		}},
		{"unknown instance", func(t *testing.T, f *fixture) string {
			_, err := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return apiCode(t, err)
		}},
		{"unknown volume", func(t *testing.T, f *fixture) string {
			_, err := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0123456789abcdef0"}})
			return apiCode(t, err)
		}},
		{"unknown snapshot", func(t *testing.T, f *fixture) string {
			_, err := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}})
			return apiCode(t, err)
		}},
		{"volume, tags and snapshot", func(t *testing.T, f *fixture) string {
			v, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1c"), Size: aws.Int32(20), VolumeType: ec2types.VolumeTypeGp3,
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: toTags(map[string]string{"anyops:kind": "logs"})}}})
			if err != nil {
				return apiCode(t, err)
			}
			if _, err := f.ec2.CreateTags(f.ctx, &ec2.CreateTagsInput{Resources: []string{*v.VolumeId}, Tags: toTags(map[string]string{"anyops:criticality": "critical"})}); err != nil {
				return apiCode(t, err)
			}
			tags, err := f.ec2.DescribeTags(f.ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{{Name: aws.String("resource-id"), Values: []string{*v.VolumeId}}}})
			if err != nil {
				return apiCode(t, err)
			}
			var keys []string
			for _, tg := range tags.Tags {
				keys = append(keys, fmt.Sprintf("%s=%s(%s)", *tg.Key, *tg.Value, tg.ResourceType))
			}
			sort.Strings(keys)
			if f.sim != nil {
				f.sim.Advance(volumeCreateTime)
			}
			sn, err := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: v.VolumeId, Description: aws.String("contract")})
			if err != nil {
				return apiCode(t, err)
			}
			return fmt.Sprintf("%s size=%d type=%s zone=%s tags=%s snap=%s of=%v size=%d progress-is-percent=%v",
				prefix(*v.VolumeId), *v.Size, v.VolumeType, *v.AvailabilityZone, strings.Join(keys, ","),
				prefix(*sn.SnapshotId), *sn.VolumeId == *v.VolumeId, *sn.VolumeSize, strings.HasSuffix(aws.ToString(sn.Progress), "%"))
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got := map[string]string{}
			for name, f := range targets {
				got[name] = st.run(t, f)
			}
			if got["moto"] != got["cloudsim"] {
				t.Fatalf("moto and cloudsim disagree:\n    moto: %s\ncloudsim: %s", got["moto"], got["cloudsim"])
			}
		})
	}
}

// motoAMI is an image moto knows (it refuses unknown ones); cloudsim accepts any.
const motoAMI = "ami-12c6146b"

func prefix(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i+1] + "…"
	}
	return id
}

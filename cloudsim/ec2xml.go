package cloudsim

import (
	"encoding/xml"
	"time"
)

// The XML shapes below follow aws-sdk-go-v2/service/ec2's deserializers (element names in
// lowerCamelCase, lists as <xSet><item>…</item></xSet>), which are the ground truth for what a
// client reads.

const ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ec2TimeFormat is how EC2 (and SSM's string timestamps) write times.
const ec2TimeFormat = "2006-01-02T15:04:05.000Z"

// ec2Time is how EC2 writes timestamps.
type ec2Time time.Time

func (t ec2Time) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format(ec2TimeFormat)), nil
}

func ts(t time.Time) *ec2Time {
	if t.IsZero() {
		return nil
	}
	e := ec2Time(t)
	return &e
}

type reqID struct {
	RequestID string `xml:"requestId"`
}

func (r *reqID) setRequestID(id string) { r.RequestID = id }

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func xTags(t tags) []xTag {
	out := make([]xTag, 0, len(t))
	for _, x := range t {
		out = append(out, xTag(x))
	}
	return out
}

type xState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xEbsInstanceBlockDevice struct {
	VolumeID            string   `xml:"volumeId"`
	Status              string   `xml:"status"`
	AttachTime          *ec2Time `xml:"attachTime,omitempty"`
	DeleteOnTermination bool     `xml:"deleteOnTermination"`
}

type xInstanceBlockDevice struct {
	DeviceName string                  `xml:"deviceName"`
	Ebs        xEbsInstanceBlockDevice `xml:"ebs"`
}

type xStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xInstance struct {
	InstanceID         string                 `xml:"instanceId"`
	ImageID            string                 `xml:"imageId"`
	InstanceState      xState                 `xml:"instanceState"`
	PrivateDNSName     string                 `xml:"privateDnsName"`
	DNSName            string                 `xml:"dnsName"`
	Reason             string                 `xml:"reason"`
	AmiLaunchIndex     int                    `xml:"amiLaunchIndex"`
	InstanceType       string                 `xml:"instanceType"`
	LaunchTime         *ec2Time               `xml:"launchTime"`
	Placement          xPlacement             `xml:"placement"`
	PrivateIPAddress   string                 `xml:"privateIpAddress"`
	VpcID              string                 `xml:"vpcId,omitempty"`
	Architecture       string                 `xml:"architecture"`
	RootDeviceType     string                 `xml:"rootDeviceType"`
	RootDeviceName     string                 `xml:"rootDeviceName"`
	BlockDeviceMapping []xInstanceBlockDevice `xml:"blockDeviceMapping>item"`
	VirtualizationType string                 `xml:"virtualizationType"`
	ClientToken        string                 `xml:"clientToken,omitempty"`
	TagSet             []xTag                 `xml:"tagSet>item"`
	Hypervisor         string                 `xml:"hypervisor"`
	StateReason        *xStateReason          `xml:"stateReason,omitempty"`
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type runInstancesResponse struct {
	reqID
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	reqID
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type xStateChange struct {
	InstanceID    string `xml:"instanceId"`
	CurrentState  xState `xml:"currentState"`
	PreviousState xState `xml:"previousState"`
}

type stateChangeResponse struct {
	reqID
	Instances []xStateChange `xml:"instancesSet>item"`
}

type xStatusDetail struct {
	Name          string   `xml:"name"`
	Status        string   `xml:"status"`
	ImpairedSince *ec2Time `xml:"impairedSince,omitempty"`
}

type xStatusSummary struct {
	Status  string          `xml:"status"`
	Details []xStatusDetail `xml:"details>item"`
}

type xInstanceStatus struct {
	InstanceID       string         `xml:"instanceId"`
	AvailabilityZone string         `xml:"availabilityZone"`
	InstanceState    xState         `xml:"instanceState"`
	SystemStatus     xStatusSummary `xml:"systemStatus"`
	InstanceStatus   xStatusSummary `xml:"instanceStatus"`
}

type describeInstanceStatusResponse struct {
	reqID
	Statuses  []xInstanceStatus `xml:"instanceStatusSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type xAttachment struct {
	VolumeID            string   `xml:"volumeId"`
	InstanceID          string   `xml:"instanceId"`
	Device              string   `xml:"device"`
	Status              string   `xml:"status"`
	AttachTime          *ec2Time `xml:"attachTime,omitempty"`
	DeleteOnTermination bool     `xml:"deleteOnTermination"`
}

type xVolume struct {
	VolumeID         string        `xml:"volumeId"`
	Size             int32         `xml:"size"`
	SnapshotID       string        `xml:"snapshotId"`
	AvailabilityZone string        `xml:"availabilityZone"`
	Status           string        `xml:"status"`
	CreateTime       *ec2Time      `xml:"createTime"`
	Attachments      []xAttachment `xml:"attachmentSet>item"`
	VolumeType       string        `xml:"volumeType"`
	Iops             int32         `xml:"iops,omitempty"`
	Encrypted        bool          `xml:"encrypted"`
	MultiAttach      bool          `xml:"multiAttachEnabled"`
	TagSet           []xTag        `xml:"tagSet>item"`
}

type createVolumeResponse struct {
	reqID
	xVolume
}

type describeVolumesResponse struct {
	reqID
	Volumes   []xVolume `xml:"volumeSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type attachmentResponse struct {
	reqID
	xAttachment
}

type returnResponse struct {
	reqID
	Return bool `xml:"return"`
}

type xVolumeModification struct {
	VolumeID           string   `xml:"volumeId"`
	ModificationState  string   `xml:"modificationState"`
	TargetSize         int32    `xml:"targetSize"`
	TargetIops         int32    `xml:"targetIops,omitempty"`
	TargetVolumeType   string   `xml:"targetVolumeType"`
	OriginalSize       int32    `xml:"originalSize"`
	OriginalIops       int32    `xml:"originalIops,omitempty"`
	OriginalVolumeType string   `xml:"originalVolumeType"`
	Progress           int64    `xml:"progress"`
	StartTime          *ec2Time `xml:"startTime"`
	EndTime            *ec2Time `xml:"endTime,omitempty"`
}

type modifyVolumeResponse struct {
	reqID
	Modification xVolumeModification `xml:"volumeModification"`
}

type describeVolumesModificationsResponse struct {
	reqID
	Modifications []xVolumeModification `xml:"volumeModificationSet>item"`
	NextToken     string                `xml:"nextToken,omitempty"`
}

type xSnapshot struct {
	SnapshotID    string   `xml:"snapshotId"`
	VolumeID      string   `xml:"volumeId"`
	Status        string   `xml:"status"`
	StartTime     *ec2Time `xml:"startTime"`
	CompletionTim *ec2Time `xml:"completionTime,omitempty"`
	Progress      string   `xml:"progress"`
	OwnerID       string   `xml:"ownerId"`
	VolumeSize    int32    `xml:"volumeSize"`
	Description   string   `xml:"description"`
	Encrypted     bool     `xml:"encrypted"`
	StorageTier   string   `xml:"storageTier"`
	TagSet        []xTag   `xml:"tagSet>item"`
}

type createSnapshotResponse struct {
	reqID
	xSnapshot
}

type describeSnapshotsResponse struct {
	reqID
	Snapshots []xSnapshot `xml:"snapshotSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

type copySnapshotResponse struct {
	reqID
	SnapshotID string `xml:"snapshotId"`
	TagSet     []xTag `xml:"tagSet>item"`
}

type xTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsResponse struct {
	reqID
	Tags      []xTagDescription `xml:"tagSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

type xZoneMessage struct {
	Message string `xml:"message"`
}

type xZone struct {
	ZoneName     string         `xml:"zoneName"`
	ZoneID       string         `xml:"zoneId"`
	ZoneState    string         `xml:"zoneState"`
	RegionName   string         `xml:"regionName"`
	ZoneType     string         `xml:"zoneType"`
	OptInStatus  string         `xml:"optInStatus"`
	GroupName    string         `xml:"groupName"`
	NetworkGroup string         `xml:"networkBorderGroup"`
	Messages     []xZoneMessage `xml:"messageSet>item"`
}

type describeZonesResponse struct {
	reqID
	Zones []xZone `xml:"availabilityZoneInfo>item"`
}

type xError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type xErrorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []xError `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

package activities

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/temporal"
)

// Storage activities that set devices up: finding a volume's device, md arrays made or
// assembled, file systems checked and mounted, NFS exports. Each looks first for what an earlier attempt did, and none ever
// writes over data it did not make.

// Error types of the storage and DRBD activities.
const (
	// ErrVolumeNotAttached: the volume is not attached to that instance (non-retryable).
	ErrVolumeNotAttached = "VolumeNotAttached"
	// ErrDeviceHasData: a device holds data the activity did not ask for — a file system
	// where DRBD metadata or another file system would go, an md superblock where an array
	// would be created. Nothing is overwritten (non-retryable: a workflow or a human decides).
	ErrDeviceHasData = "DeviceHasData"
)

// Exit codes of the storage scripts (see hosts.go for the others).
const (
	exitNoSuchDevice = 67
	exitHasData      = 68
)

var (
	reVolumeID   = regexp.MustCompile(`^vol-[0-9a-f]{8,17}$`)
	reInstanceID = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
)

// NVMeByIDPrefix is the stable link udev makes for an EBS volume on a Nitro instance, after
// the NVMe serial EBS gives it: the volume id without its dash.
const NVMeByIDPrefix = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"

// VolumeDeviceInput names a volume attached to an instance.
type VolumeDeviceInput struct {
	InstanceID string
	VolumeID   string
}

// VolumeDevice is where an instance's operating system sees a volume.
type VolumeDevice struct {
	VolumeID string
	// Device is the kernel's name for it now: /dev/nvme1n1 on Nitro instance types, /dev/xvdf
	// on Xen ones. A Nitro name can differ after a reboot.
	Device string
	// ByID is the stable link /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol… that
	// names the volume by its id on Nitro; "" on Xen, where there is none.
	ByID string
	// Requested is the name AttachVolume asked for, which EC2 keeps reporting.
	Requested string
}

// StablePath is the name to write into configuration: the by-id link when there is one,
// which survives renaming, else the device.
func (d VolumeDevice) StablePath() string {
	if d.ByID != "" {
		return d.ByID
	}
	return d.Device
}

// FindVolumeDevice finds the device of a volume on the instance it is attached to, by the
// volume's id — never by the name it was attached as, which Nitro instances do not use. It
// resolves the by-id link named after the volume's NVMe serial and, on Xen instances (no
// serials), the xvd form of the requested name. A volume still attaching, or whose device the
// kernel has not shown yet, is a retryable DeviceMissing; one not attached there a
// non-retryable VolumeNotAttached (or VolumeAttachedElsewhere). Read-only: repeatable.
func (h *Hosts) FindVolumeDevice(ctx context.Context, in VolumeDeviceInput) (VolumeDevice, error) {
	if !reVolumeID.MatchString(in.VolumeID) || !reInstanceID.MatchString(in.InstanceID) {
		return VolumeDevice{}, invalidInput("VolumeID %q and InstanceID %q must be EC2 ids", in.VolumeID, in.InstanceID)
	}
	vol, err := (&Cloud{Clients: h.Clients}).describeVolume(ctx, in.VolumeID)
	if err != nil {
		return VolumeDevice{}, err
	}
	att, attached := attachedTo(vol)
	switch {
	case !attached:
		return VolumeDevice{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("volume %s is not attached to %s", in.VolumeID, in.InstanceID), ErrVolumeNotAttached, nil)
	case att.InstanceID != in.InstanceID:
		return VolumeDevice{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("volume %s is attached to %s, not to %s", in.VolumeID, att.InstanceID, in.InstanceID), ErrVolumeAttachedElsewhere, nil, att)
	case att.State != string(types.VolumeAttachmentStateAttached):
		return VolumeDevice{}, temporal.NewApplicationError(
			fmt.Sprintf("volume %s is %s to %s", in.VolumeID, att.State, in.InstanceID), ErrDeviceMissing)
	}
	if err := checkField("Device", att.Device, reDevice); err != nil {
		return VolumeDevice{}, err
	}
	byID := NVMeByIDPrefix + strings.Replace(in.VolumeID, "-", "", 1)
	lines := []string{"readlink -e " + shellQuote(byID) + " && echo " + byIDMarker + " && exit 0"}
	for _, name := range xenNames(att.Device) {
		lines = append(lines, "readlink -e "+shellQuote(name)+" && exit 0")
	}
	lines = append(lines, "exit "+strconv.Itoa(exitNoSuchDevice))
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops find volume device", Commands: lines})
	if err != nil {
		return VolumeDevice{}, err
	}
	if res.ExitCode == exitNoSuchDevice {
		return VolumeDevice{}, temporal.NewApplicationError(
			fmt.Sprintf("no device for volume %s on %s yet", in.VolumeID, in.InstanceID), ErrDeviceMissing, res)
	}
	if err := commandError(res); err != nil {
		return VolumeDevice{}, err
	}
	out := strings.Fields(res.Stdout)
	if len(out) == 0 || !reDevice.MatchString(out[0]) {
		return VolumeDevice{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("device lookup of %s on %s printed %q", in.VolumeID, in.InstanceID, res.Stdout), ErrUnexpectedOutput, nil, res)
	}
	d := VolumeDevice{VolumeID: in.VolumeID, Device: out[0], Requested: att.Device}
	if strings.Contains(res.Stdout, byIDMarker) {
		d.ByID = byID
	}
	return d, nil
}

const byIDMarker = "anyops-by-id"

// xenNames are the names a Xen guest gives a volume attached as requested: /dev/sdf appears as
// /dev/xvdf.
func xenNames(requested string) []string {
	if rest, ok := strings.CutPrefix(requested, "/dev/sd"); ok {
		return []string{"/dev/xvd" + rest, requested}
	}
	return []string{requested}
}

// EnsureRAIDInput makes sure an md array runs.
type EnsureRAIDInput struct {
	InstanceID string
	Device     string   // /dev/md0
	Level      string   // "0" or "1"
	Members    []string // in order; e.g. /dev/drbd0 … /dev/drbd3
}

// EnsureRAIDOutput says what EnsureRAID found or did.
type EnsureRAIDOutput struct {
	AlreadyActive bool
	Assembled     bool // from the superblocks already on the members
	Created       bool
	Result        CommandResult
}

// EnsureRAID runs an md array: already active is success; an array whose members carry its
// superblocks is assembled; only when no member carries any superblock is it created. A
// member with a superblock that does not assemble into this array (another array's, or one
// of its members missing) is a non-retryable DeviceHasData — never created over — and mdadm
// itself refuses to create over a member that holds a file system.
func (h *Hosts) EnsureRAID(ctx context.Context, in EnsureRAIDInput) (EnsureRAIDOutput, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return EnsureRAIDOutput{}, err
	}
	if in.Level != "0" && in.Level != "1" {
		return EnsureRAIDOutput{}, invalidInput("Level %q: 0 or 1", in.Level)
	}
	if len(in.Members) == 0 {
		return EnsureRAIDOutput{}, invalidInput("Members are required")
	}
	var members []string
	for _, m := range in.Members {
		if err := checkField("Members", m, reDevice); err != nil {
			return EnsureRAIDOutput{}, err
		}
		members = append(members, shellQuote(m))
	}
	dev, all := shellQuote(in.Device), strings.Join(members, " ")
	lines := []string{
		"mdadm --detail " + dev + " >/dev/null 2>&1 && echo anyops-active && exit 0",
		"mdadm --assemble " + dev + " " + all + " >/dev/null 2>&1 && echo anyops-assembled && exit 0",
	}
	for _, m := range members {
		lines = append(lines, "mdadm --examine "+m+" >/dev/null 2>&1 && exit "+strconv.Itoa(exitHasData))
	}
	lines = append(lines, fmt.Sprintf("mdadm --create %s --level=%s --raid-devices=%d %s && echo anyops-created", dev, in.Level, len(members), all))
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops ensure raid", Commands: lines})
	if err != nil {
		return EnsureRAIDOutput{}, err
	}
	if res.ExitCode == exitHasData {
		return EnsureRAIDOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s on %s does not assemble, and a member carries an md superblock: refusing to create over it", in.Device, in.InstanceID),
			ErrDeviceHasData, nil, res)
	}
	if err := commandError(res); err != nil {
		return EnsureRAIDOutput{}, err
	}
	return EnsureRAIDOutput{
		AlreadyActive: strings.Contains(res.Stdout, "anyops-active"),
		Assembled:     strings.Contains(res.Stdout, "anyops-assembled"),
		Created:       strings.Contains(res.Stdout, "anyops-created"),
		Result:        res,
	}, nil
}

// MakeFilesystemInput makes a file system on a device.
type MakeFilesystemInput struct {
	InstanceID string
	Device     string
	FSType     string // ext4 or xfs
}

// MakeFilesystemOutput says whether the file system was made now.
type MakeFilesystemOutput struct {
	Created bool // false: it was there already
	Result  CommandResult
}

// MakeFilesystem makes a file system unless the device already has one of that type (a retry,
// or a later run, finds it and makes nothing). Anything else on the device — another file
// system type, an md superblock — is a non-retryable DeviceHasData: it is never formatted
// over, and mkfs runs without -F so that it would refuse too.
func (h *Hosts) MakeFilesystem(ctx context.Context, in MakeFilesystemInput) (MakeFilesystemOutput, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return MakeFilesystemOutput{}, err
	}
	if in.FSType != "ext4" && in.FSType != "xfs" {
		return MakeFilesystemOutput{}, invalidInput("FSType %q: ext4 or xfs", in.FSType)
	}
	dev, fs := shellQuote(in.Device), shellQuote(in.FSType)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops make file system", Commands: []string{
		"blkid -o value -s TYPE " + dev + " 2>/dev/null | grep -q -x -F " + fs + " && echo anyops-exists && exit 0",
		"blkid " + dev + " 2>/dev/null | grep -q . && exit " + strconv.Itoa(exitHasData),
		"mkfs." + in.FSType + " -q " + dev + " && echo anyops-created",
	}})
	if err != nil {
		return MakeFilesystemOutput{}, err
	}
	if res.ExitCode == exitHasData {
		return MakeFilesystemOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s on %s holds other data: refusing to make a %s file system over it", in.Device, in.InstanceID, in.FSType),
			ErrDeviceHasData, nil, res)
	}
	if err := commandError(res); err != nil {
		return MakeFilesystemOutput{}, err
	}
	return MakeFilesystemOutput{Created: strings.Contains(res.Stdout, "anyops-created"), Result: res}, nil
}

// AssembleRAIDInput assembles an md array from its member volumes.
type AssembleRAIDInput struct {
	InstanceID string
	Device     string   // e.g. /dev/md0
	Members    []string // e.g. /dev/xvdf /dev/xvdg; empty lets mdadm scan
}

// AssembleRAIDOutput says whether the array had to be assembled.
type AssembleRAIDOutput struct {
	AlreadyActive bool
	Result        CommandResult
}

// AssembleRAID assembles the array unless it is already active.
func (h *Hosts) AssembleRAID(ctx context.Context, in AssembleRAIDInput) (AssembleRAIDOutput, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return AssembleRAIDOutput{}, err
	}
	members := ""
	for _, m := range in.Members {
		if err := checkField("Members", m, reDevice); err != nil {
			return AssembleRAIDOutput{}, err
		}
		members += " " + shellQuote(m)
	}
	if members == "" {
		members = " --scan"
	}
	dev := shellQuote(in.Device)
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops assemble raid", Commands: []string{
		"mdadm --detail " + dev + " >/dev/null 2>&1 && echo already-active && exit 0",
		"mdadm --assemble " + dev + members,
	}})
	if err != nil {
		return AssembleRAIDOutput{}, err
	}
	return AssembleRAIDOutput{AlreadyActive: strings.Contains(res.Stdout, "already-active"), Result: res}, nil
}

// FsckInput checks (and with Repair, repairs) the file system on an unmounted device.
type FsckInput struct {
	InstanceID string
	Device     string
	Repair     bool
}

// FsckOutput reads fsck's exit code.
type FsckOutput struct {
	Clean      bool // nothing wrong
	Corrected  bool // errors were found and repaired
	ErrorsLeft bool // errors remain (with Repair false: errors were found)
	Result     CommandResult
}

// Fsck runs fsck on an unmounted device; a mounted one is a non-retryable DeviceMounted
// error (no retry unmounts it: the workflow must).
// Errors left on the file system are a finding in the output, not an activity error: the
// workflow decides (restore from the backup, build a new server).
func (h *Hosts) Fsck(ctx context.Context, in FsckInput) (FsckOutput, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return FsckOutput{}, err
	}
	dev := shellQuote(in.Device)
	mode := "-n"
	if in.Repair {
		mode = "-y"
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops fsck", Commands: []string{
		"mount | grep -q -F " + shellQuote(in.Device+" on ") + " && exit " + strconv.Itoa(exitDeviceMounted),
		"fsck " + mode + " " + dev,
	}})
	if err != nil {
		return FsckOutput{}, err
	}
	out := FsckOutput{Result: res}
	switch code := res.ExitCode; {
	case code == exitDeviceMounted:
		return FsckOutput{}, temporal.NewNonRetryableApplicationError(in.Device+" is mounted", ErrDeviceMounted, nil, res)
	case code == 0:
		out.Clean = true
	case code == exitCommandMissing:
		return FsckOutput{}, commandError(res)
	case code&^3 == 0: // 1 corrected, 2 corrected and the host should reboot
		out.Corrected = true
	case code&^3 == 4: // 4: errors left uncorrected, possibly with some corrected
		out.Corrected = code&3 != 0
		out.ErrorsLeft = true
	default: // 8 operational error, 16 usage, 32 cancelled, 128 library error
		return FsckOutput{}, commandError(res)
	}
	return out, nil
}

// MountInput mounts a device.
type MountInput struct {
	InstanceID string
	Device     string
	MountPoint string
	FSType     string // empty lets mount detect it
	Options    string // e.g. noatime,nodev
}

// Mount mounts the device; the same device already mounted there is success, another device
// mounted there a non-retryable MountpointBusy error.
func (h *Hosts) Mount(ctx context.Context, in MountInput) (CommandResult, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return CommandResult{}, err
	}
	if err := checkPath("MountPoint", in.MountPoint); err != nil {
		return CommandResult{}, err
	}
	if err := checkField("Options", in.Options, reOptions); err != nil {
		return CommandResult{}, err
	}
	mount := "mount"
	if in.FSType != "" {
		if err := checkField("FSType", in.FSType, reName); err != nil {
			return CommandResult{}, err
		}
		mount += " -t " + shellQuote(in.FSType)
	}
	if in.Options != "" {
		mount += " -o " + shellQuote(in.Options)
	}
	dev, mp := shellQuote(in.Device), shellQuote(in.MountPoint)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops mount", Commands: []string{
		// `mount` lists "DEVICE on DIR type ...": our device already there is success.
		"mount | grep -q -F " + shellQuote(in.Device+" on "+in.MountPoint+" type ") + " && exit 0",
		"mountpoint -q " + mp + " && exit " + strconv.Itoa(exitMountpointBusy),
		"mkdir -p " + mp + " 2>/dev/null",
		mount + " " + dev + " " + mp,
	}})
	if err != nil {
		return res, err
	}
	return res, classifyExit(res, "mount "+in.Device, mountFailures...)
}

// mountFailures: mount(8) exits 32 for every failure; its message says which.
var mountFailures = []exitRule{
	{exitMountpointBusy, "", ErrMountpointBusy, false},
	{32, "does not exist", ErrDeviceMissing, true},
	{32, "wrong medium type", ErrMountFailed, false}, // a DRBD device that is not Primary
	{32, "bad superblock", ErrMountFailed, false},
	{32, "already mounted", ErrMountFailed, false},
}

// UmountInput unmounts a mount point.
type UmountInput struct {
	InstanceID string
	MountPoint string
}

// Umount unmounts the mount point; nothing mounted there is success.
func (h *Hosts) Umount(ctx context.Context, in UmountInput) (CommandResult, error) {
	if err := checkPath("MountPoint", in.MountPoint); err != nil {
		return CommandResult{}, err
	}
	mp := shellQuote(in.MountPoint)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops umount", Commands: []string{
		"mountpoint -q " + mp + " || exit 0",
		"umount " + mp,
	}})
	if err != nil {
		return res, err
	}
	// Busy is retried: processes close their files. An NFS export keeps it busy until the
	// workflow unexports; the type tells it so when the retries run out.
	return res, classifyExit(res, "umount "+in.MountPoint, exitRule{32, "busy", ErrTargetBusy, true})
}

// NFSExportInput names one export: a path to a set of clients.
type NFSExportInput struct {
	InstanceID string
	Path       string
	Clients    string // e.g. 10.0.0.0/16 or *
	Options    string // e.g. rw,sync,no_subtree_check; used by ExportNFS
}

func (in NFSExportInput) check() error {
	if err := checkPath("Path", in.Path); err != nil {
		return err
	}
	if err := checkField("Clients", in.Clients, reNFSHosts); err != nil {
		return err
	}
	return checkField("Options", in.Options, reOptions)
}

// ExportNFS exports a path; exportfs replaces an existing export of the same path and
// clients, so a retry is harmless.
func (h *Hosts) ExportNFS(ctx context.Context, in NFSExportInput) (CommandResult, error) {
	if err := in.check(); err != nil {
		return CommandResult{}, err
	}
	cmd := "exportfs"
	if in.Options != "" {
		cmd += " -o " + shellQuote(in.Options)
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops export nfs", Commands: []string{
		cmd + " " + shellQuote(in.Clients+":"+in.Path),
	}})
	if err != nil {
		return res, err
	}
	return res, classifyExit(res, "exportfs "+in.Path, exitRule{0, "Failed to stat", ErrExportPathMissing, false})
}

// UnexportNFS withdraws an export; an export that is not there is success.
func (h *Hosts) UnexportNFS(ctx context.Context, in NFSExportInput) (CommandResult, error) {
	if err := in.check(); err != nil {
		return CommandResult{}, err
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops unexport nfs", Commands: []string{
		"exportfs -u " + shellQuote(in.Clients+":"+in.Path),
	}})
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 && strings.Contains(res.Stderr, "Could not find") {
		return res, nil
	}
	return res, commandError(res)
}

// Block devices as EC2's hypervisors present EBS volumes to Linux, and the tools that find
// them: readlink and ls of /dev/disk/by-id.
//
// On Xen instance types a volume attached as /dev/sdf appears as /dev/xvdf (the sd name is
// accepted as an alias, as the symlinks of Amazon's images make it). On Nitro types every EBS
// volume is an NVMe controller: the guest names it /dev/nvme<N>n1 in the order it finds the
// controllers, whatever name AttachVolume asked for, and the controller's serial number is the
// volume id without its dash, which udev turns into the stable link
// /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123… → ../../nvme1n1. DescribeVolumes
// keeps reporting the requested name, as AWS does. Scripts must therefore find a volume by its
// id, never by the name it was attached as.

package cloudsim

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// xenFamilies are the instance families that run on the Xen hypervisor; every other family
// (the 5th generation and later — m5*, c5*, r5*, m6*, c6*, … — and a1, t3, t3a, t4g, z1d, i3en,
// p3dn) and every .metal size is built on Nitro, as AWS's "Instances built on the Nitro
// System" lists them. An unknown family counts as Nitro: new families are.
var xenFamilies = map[string]bool{
	"c1": true, "c3": true, "c4": true, "cc1": true, "cc2": true, "cg1": true, "cr1": true,
	"d2": true, "f1": true, "g2": true, "g3": true, "g3s": true, "h1": true, "hi1": true, "hs1": true,
	"i2": true, "i3": true, "m1": true, "m2": true, "m3": true, "m4": true, "p2": true, "p3": true,
	"r3": true, "r4": true, "t1": true, "t2": true, "x1": true, "x1e": true,
}

// nitroType is whether instances of type t (e.g. m5.2xlarge) expose EBS volumes as NVMe.
func nitroType(t string) bool {
	family, size, _ := strings.Cut(t, ".")
	if size == "metal" || strings.HasPrefix(size, "metal-") {
		return true
	}
	return !xenFamilies[family]
}

// byIDPrefix is what udev names an EBS volume's NVMe controller after its serial.
const byIDPrefix = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"

// nvmeSerial is the NVMe serial number EBS gives a volume: its id without the dash.
func nvmeSerial(volumeID string) string { return strings.Replace(volumeID, "-", "", 1) }

var (
	reNVMe      = regexp.MustCompile(`^/dev/nvme([0-9]+)n1$`)
	reNVMePart  = regexp.MustCompile(`^(/dev/nvme[0-9]+n1)p([0-9]+)$`)
	reXenPart   = regexp.MustCompile(`^(/dev/(?:xvd|sd)[a-z]+)([0-9]+)$`)
	nvmeRootDev = "/dev/nvme0n1"
)

// rootPartition is the device the instance's root file system is mounted from.
func rootPartition(in *instance) string {
	if nitroType(in.Type) {
		return nvmeRootDev + "p1"
	}
	return "/dev/xvda1"
}

// nameDevice gives the attached volume v the name the guest of in sees it by, if it has none
// yet: the xvd form of the requested name on Xen, on Nitro the lowest NVMe index not in use
// (the root volume is always nvme0), as the kernel hands them out when a controller appears.
func (s *Sim) nameDevice(in *instance, v *volume) {
	a := v.Attachment
	if a == nil || a.OSDevice != "" {
		return
	}
	s.markDirty()
	if !nitroType(in.Type) {
		a.OSDevice = canonicalDevice(a.Device)
		return
	}
	if v.ID == in.RootVolume {
		a.OSDevice = nvmeRootDev
		return
	}
	used := map[int]bool{0: true}
	for _, o := range s.st.Volumes {
		if oa := o.Attachment; oa != nil && oa.InstanceID == in.ID {
			if m := reNVMe.FindStringSubmatch(oa.OSDevice); m != nil {
				n, _ := strconv.Atoi(m[1])
				used[n] = true
			}
		}
	}
	n := 1
	for used[n] {
		n++
	}
	a.OSDevice = fmt.Sprintf("/dev/nvme%dn1", n)
}

// renameDevices runs at boot: the guest finds its controllers again and names them in the
// order it finds them — here the root volume first, then by volume id — so an NVMe name can
// differ from the one before the reboot. Only the by-id links are stable.
func (s *Sim) renameDevices(in *instance) {
	var attached []*volume
	for _, id := range sortedKeys(s.st.Volumes) {
		if v := s.st.Volumes[id]; v.Attachment != nil && v.Attachment.InstanceID == in.ID && v.Attachment.State != "attaching" {
			v.Attachment.OSDevice = ""
			attached = append(attached, v)
		}
	}
	sort.SliceStable(attached, func(i, j int) bool { return attached[i].ID == in.RootVolume && attached[j].ID != in.RootVolume })
	for _, v := range attached {
		s.nameDevice(in, v)
	}
}

// devices lists the block devices a host sees by the names it sees them: attached volumes
// (not those still attaching), each once.
func (s *Sim) devices(h *host) map[string]*volume {
	out := map[string]*volume{}
	in := s.st.Instances[h.InstanceID]
	for _, id := range sortedKeys(s.st.Volumes) {
		v := s.st.Volumes[id]
		if a := v.Attachment; a != nil && a.InstanceID == h.InstanceID && a.State != "attaching" {
			if in != nil {
				s.nameDevice(in, v) // state files from before devices had names
			}
			if a.OSDevice != "" {
				out[a.OSDevice] = v
			}
		}
	}
	return out
}

// canonicalDevice maps /dev/sdf and /dev/xvdf (how the attach names it and how Linux on Xen
// names it) to one name; other names stay as they are.
func canonicalDevice(d string) string {
	if strings.HasPrefix(d, "/dev/sd") {
		return "/dev/xvd" + d[len("/dev/sd"):]
	}
	return d
}

func sameDevice(a, b string) bool { return canonicalDevice(a) == canonicalDevice(b) }

// partitionBase is the whole-disk device of a partition name (/dev/xvdf1, /dev/nvme1n1p1).
func partitionBase(dev string) (string, bool) {
	if m := reNVMePart.FindStringSubmatch(dev); m != nil {
		return m[1], true
	}
	if m := reXenPart.FindStringSubmatch(dev); m != nil {
		return m[1], true
	}
	return "", false
}

// byIDLink is one /dev/disk/by-id entry: a link name and the device it points at.
type byIDLink struct {
	name, target string
	since        time.Time
}

// byIDLinks are the /dev/disk/by-id links udev makes for the host's NVMe EBS volumes: one per
// volume, and one per partition of the root volume. Xen devices have no serial: none.
func (x *execCtx) byIDLinks() []byIDLink {
	var out []byIDLink
	devs := x.s.devices(x.h)
	for _, dev := range sortedKeys(devs) {
		if !reNVMe.MatchString(dev) {
			continue
		}
		v := devs[dev]
		name := byIDPrefix + nvmeSerial(v.ID)
		out = append(out, byIDLink{name, dev, v.Attachment.Since})
		if v.Root {
			out = append(out, byIDLink{name + "-part1", dev + "p1", v.Attachment.Since})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// blockDeviceExists is whether dev names a block device node on the host: an attached volume
// (or its sd alias on Xen), a partition of one, an up DRBD device, an active md array.
func (x *execCtx) blockDeviceExists(dev string) bool {
	_, _, ok := x.resolveDevice(dev)
	return ok
}

// cmdReadlink resolves the host's device links: `readlink -e|-f PATH` prints the device a
// by-id link (or a device node) stands for, plain `readlink LINK` the link's target.
func cmdReadlink(x *execCtx, args []string, _ string) result {
	mode := ""
	var paths []string
	for _, a := range args {
		switch a {
		case "-e", "-f", "-m", "--canonicalize-existing", "--canonicalize", "--canonicalize-missing":
			mode = a
		case "-n", "-q", "-s", "--no-newline", "--quiet", "--silent":
		default:
			if strings.HasPrefix(a, "-") {
				return fail(1, "readlink: option %s is not simulated", a)
			}
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		return fail(1, "readlink: missing operand")
	}
	var b strings.Builder
	code := 0
	for _, p := range paths {
		if !strings.HasPrefix(p, "/dev/") {
			return fail(2, "cloudsim: readlink of %s is not simulated (only /dev)", p)
		}
		target, isLink := "", false
		for _, l := range x.byIDLinks() {
			if l.name == p {
				target, isLink = l.target, true
			}
		}
		switch {
		case mode == "" && isLink:
			b.WriteString("../../" + strings.TrimPrefix(target, "/dev/") + "\n")
		case mode == "":
			code = 1
		case isLink:
			b.WriteString(target + "\n")
		case x.blockDeviceExists(p):
			b.WriteString(x.devName(p) + "\n")
		case mode == "-f" || mode == "--canonicalize" || mode == "-m" || mode == "--canonicalize-missing":
			b.WriteString(p + "\n") // the last component may be missing
		default:
			code = 1
		}
	}
	return result{out: b.String(), code: code}
}

// devName is the name the host knows a device path by: a by-id link resolves to the device
// it points at and, on Xen, an sd alias to its xvd name (the alias is a link too).
func (x *execCtx) devName(dev string) string {
	if strings.HasPrefix(dev, "/dev/disk/by-id/") {
		for _, l := range x.byIDLinks() {
			if l.name == dev {
				return l.target
			}
		}
		return dev
	}
	if x.in != nil && !nitroType(x.in.Type) {
		return canonicalDevice(dev)
	}
	return dev
}

// lsByID is `ls [-l] /dev/disk/by-id`: on a host with no device that has a serial the
// directory does not exist, as on Xen.
func (x *execCtx) lsByID(long bool) result {
	links := x.byIDLinks()
	if len(links) == 0 {
		return fail(2, "ls: cannot access '/dev/disk/by-id/': No such file or directory")
	}
	var b strings.Builder
	if long {
		b.WriteString("total 0\n")
	}
	for _, l := range links {
		name := strings.TrimPrefix(l.name, "/dev/disk/by-id/")
		if !long {
			b.WriteString(name + "\n")
			continue
		}
		target := "../../" + strings.TrimPrefix(l.target, "/dev/")
		fmt.Fprintf(&b, "lrwxrwxrwx 1 root root %d %s %s -> %s\n", len(target), l.since.UTC().Format("Jan _2 15:04"), name, target)
	}
	return ok(b.String())
}

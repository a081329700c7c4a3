package cloudsim

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"
)

// FuzzParseQuery feeds arbitrary bodies to the EC2 Query parser and every list helper the
// actions use: none may panic, and a parsed request always has an Action.
// Corpus: testdata/fuzz/FuzzParseQuery.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName&Filter.1.Value.1=web*&InstanceId.1=i-1",
		"Action=RunInstances&ImageId=ami-1&MinCount=1&MaxCount=1&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=k&TagSpecification.1.Tag.1.Value=v&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fsdf&BlockDeviceMapping.1.Ebs.VolumeSize=100",
		"Action=CreateTags&ResourceId.1=vol-1&Tag.1.Key=a&Tag.1.Value=b",
		"Action=X&Filter.0.Name=a",
		"Action=X&Filter.99999999999999999999.Name=a",
		"Action=X&NextToken=-1&MaxResults=2",
		"Action=X&Filter.1.Value.1=a",
		"%zz",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, aerr := parseQuery(body)
		if aerr != nil {
			if aerr.Status < 400 || aerr.Status >= 500 || aerr.Code == "" {
				t.Fatalf("parse error must be a 4xx with a code: %+v", aerr)
			}
			return
		}
		if q.Action == "" {
			t.Fatal("parsed a request without an Action")
		}
		q.filters()
		q.tagSpecs("instance", "volume", "snapshot")
		q.tagList("Tag")
		q.list("InstanceId")
		parseBlockDevices(q)
		q.paramHash()
		page(q, []int{1, 2, 3})
		q.bool("DryRun")
		q.int32("MaxCount", 0)
	})
}

// FuzzEC2Request sends arbitrary Query bodies through the whole EC2 handler of a fresh Sim:
// the answer is always well-formed XML, never a 5xx, and an error is never a 200.
// Corpus: testdata/fuzz/FuzzEC2Request.
func FuzzEC2Request(f *testing.F) {
	for _, seed := range []string{
		"Action=RunInstances&ImageId=ami-1&MinCount=1&MaxCount=2&Placement.AvailabilityZone=us-east-1b",
		"Action=CreateVolume&AvailabilityZone=us-east-1a&Size=10&ClientToken=t",
		"Action=DescribeVolumes&Filter.1.Name=status&Filter.1.Value.1=%5B",
		"Action=DescribeInstanceStatus&IncludeAllInstances=maybe",
		"Action=ModifyVolume&VolumeId=vol-1&Size=-5",
		"Action=CopySnapshot&SourceSnapshotId=snap-1&SourceRegion=us-east-1",
		"Action=DescribeTags&Filter.1.Name=key&Filter.1.Value.1=*",
		"Action=NoSuchThing",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s, err := New(Config{Speed: frozen})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		h := s.Handler()
		for range 2 { // twice: the second sees what the first created
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
			}
			var doc struct {
				XMLName xml.Name
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("response is not XML for %q: %v\n%s", body, err, rec.Body.String())
			}
			isErr := doc.XMLName.Local == "Response"
			if isErr != (rec.Code != http.StatusOK) {
				t.Fatalf("status %d with document %s for %q", rec.Code, doc.XMLName.Local, body)
			}
			s.Advance(time.Minute)
		}
	})
}

// FuzzShell runs arbitrary scripts on a simulated host: the shell never panics, and an
// unknown command can never succeed silently.
// Corpus: testdata/fuzz/FuzzShell.
func FuzzShell(f *testing.F) {
	for _, seed := range []string{
		"drbdadm status home0",
		"set -e\nmdadm --assemble /dev/md0 /dev/xvdf /dev/xvdg && mount /dev/md0 /srv",
		"echo 'a b' \"c\\\"d\" | grep -q c || exit 3",
		"nosuch 2>&1 >/dev/null",
		"bash -c 'sudo -u root systemctl restart nginx'",
		"exportfs -o rw 10.0.0.0/8:/srv/home; exportfs -u 10.0.0.0/8:/srv/home",
		"cat /proc/mdstat | tail -n 1 | wc -l",
		"echo $(id)",
		"'unterminated",
		"printf '%s\\n' 'resource r {' '}' > /etc/drbd.d/r.res && drbdadm up r",
		"mkfs.ext4 /dev/nvme1n1 && mdadm --create /dev/md0 --raid-devices=1 /dev/nvme1n1 < /etc/hostname",
		"readlink -e /dev/disk/by-id/x; ls -l /etc/drbd.d/; cmp - /etc/drbd.conf",
		"a &&",
		"timeout -s KILL 3 bash -c 'touch /home/x' || timeout 2m sleep 200",
		"mount -t nfs4 -o vers=4.1 ip-10-0-0-4:/srv/home /home; [ -w /home ] && df -h /home; umount -f -l /home",
		"printf x | tee -a /srv/x; stat -c '%n %s %F' /srv/x; test ! -d /srv/x && getent hosts files.live.internal",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script string) {
		s, err := New(Config{Speed: frozen})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		in := &instance{ID: "i-0fuzz", PrivateIP: "10.0.0.9", State: stateRunning, Zone: "us-east-1a"}
		s.st.Instances[in.ID] = in
		h := newHost(in)
		s.st.Hosts[in.ID] = h
		r := s.runScript(h, in, script, s.Now())
		if r.code < 0 || r.code > 255 {
			t.Fatalf("exit code %d out of range for %q", r.code, script)
		}
		if r.dur < 0 {
			t.Fatalf("negative duration for %q", script)
		}
		toks, err := tokenize(script)
		if err != nil {
			return
		}
		if len(toks) == 1 && toks[0].kind == tokWord {
			if _, known := commands[toks[0].text]; !known && r.code != 127 {
				t.Fatalf("unknown command %q exited %d, want 127", toks[0].text, r.code)
			}
		}
	})
}

// FuzzScenario parses arbitrary scenario files: no panics, and whatever parses validates or
// is rejected as a whole.
// Corpus: testdata/fuzz/FuzzScenario.
func FuzzScenario(f *testing.F) {
	f.Add([]byte("- at: 10m\n  fault: {type: hardware-failure, instance_id: i-1}\n"))
	f.Add([]byte(`[{"at":"1h","fault":{"type":"throttle","count":3}}]`))
	f.Add([]byte(`{"at":"1h"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := New(Config{Speed: frozen})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		faults, err := s.LoadScenario(data)
		_, scheduled := s.Faults()
		active, _ := s.Faults()
		if err != nil && len(scheduled)+len(active) != 0 {
			t.Fatalf("a rejected scenario left %d faults", len(scheduled)+len(active))
		}
		if err == nil && len(faults) < len(scheduled) {
			t.Fatalf("scheduled more than loaded")
		}
	})
}

// FuzzNFSMount feeds arbitrary sources and option strings to mount.nfs4's parser: it never
// panics, and what it accepts is a host, a clean absolute export path, a retry time and an
// NFS 4 minor version. Corpus: testdata/fuzz/FuzzNFSMount.
func FuzzNFSMount(f *testing.F) {
	for _, seed := range [][2]string{
		{"files.live.internal:/srv/home", "vers=4.2,hard,timeo=600"},
		{"10.0.1.10:/srv/home", ""},
		{"host:/srv/../etc", "soft"},
		{"host:relative", "retry=0"},
		{":/x", "vers=3"},
		{"[::1]:/x", "rw,,ro,retry=99999"},
		{"a:b:/c", "nfsvers=4,sec=sys,bogus"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, source, options string) {
		host, export, retry, vers, err := parseNFSMount(source, options)
		if err != nil {
			return
		}
		if host == "" || !path.IsAbs(export) || path.Clean(export) != export || retry < 0 ||
			(vers != "4.0" && vers != "4.1" && vers != "4.2") {
			t.Fatalf("accepted %q %q as host %q export %q retry %s vers %q", source, options, host, export, retry, vers)
		}
	})
}

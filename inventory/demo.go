package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"

	"gorm.io/gorm"

	"github.com/anyops/anyops"
)

// Fleet is a whole fleet as rows, in the order they can be inserted.
type Fleet struct {
	Zones    []Zone    `json:"zones"`
	Releases []Release `json:"releases"`
	Clusters []Cluster `json:"clusters"`
	Servers  []Server  `json:"servers"`
	Volumes  []Volume  `json:"volumes"`
	Replicas []Replica `json:"replicas"`
	WebApps  []WebApp  `json:"web_apps,omitempty"`
}

// Demo fleet names, for code that needs to point at a part of it.
const (
	DemoZone        = "us-east-1a"
	DemoSpareZone   = "us-east-1c"
	DemoCluster     = "live"
	DemoRelease     = "2026.11"
	DemoFileServer  = DemoCluster + "-file"
	DemoBackup      = DemoCluster + "-backup"
	DemoHomeVolumes = 4
)

// demoID derives a stable cloud id (prefix + 17 hex digits) from a name, so the demo fleet is
// the same on every machine and every run.
func demoID(prefix, name string) string {
	sum := sha256.Sum256([]byte("anyops-demo/" + name))
	return prefix + hex.EncodeToString(sum[:])[:17]
}

// DemoFleet is the fleet `anyops dev` starts with: zone us-east-1a with one live cluster (the
// live shape, ClusterShape) whose web servers serve the demo web apps (some on custom domains),
// and an empty zone us-east-1c to migrate to.
func DemoFleet() Fleet {
	f := ClusterShape(DemoCluster, DemoZone, DemoRelease)
	f.Zones = []Zone{
		{Name: DemoZone, Region: "us-east-1"},
		{Name: DemoSpareZone, Region: "us-east-1"},
	}
	f.Releases = []Release{{Name: DemoRelease, Notes: "demo release"}}
	f.WebApps = DemoWebApps()
	return f
}

// Names of the servers of a cluster of the live shape.
func FileServerOf(cluster string) string   { return cluster + "-file" }
func BackupServerOf(cluster string) string { return cluster + "-backup" }

// ClusterShape is a cluster of the live shape, the one every live cluster has (and drills and
// releases build beside it): a file server and a backup server forming DRBD pairs, 2 web, 2
// console and 1 scheduled-task server, all in zone. Its cluster, servers, volumes and replicas;
// no zones or releases.
//
// Every server has a boot volume. The file server has a home RAID (md0) of 4 volumes, a logs
// volume and a Dropbox volume; the backup server has its own 4 home volumes. DRBD runs one
// resource per home volume (<cluster>-r0 … -r3: file volume i → backup volume i), and md0 is
// assembled on top of the DRBD devices, so a replica is exactly one volume pair. Instance and
// volume ids are stable fakes derived from the names: the cloud's real ones replace them.
func ClusterShape(cluster, zone, release string) Fleet {
	f := Fleet{Clusters: []Cluster{{Name: cluster, Zone: zone, State: anyops.ClusterLive, Release: release}}}
	file, backup := FileServerOf(cluster), BackupServerOf(cluster)
	type spec struct {
		name, instanceType string
		role               anyops.Role
	}
	specs := []spec{
		{file, "m5.2xlarge", anyops.RoleFile},
		{backup, "m5.2xlarge", anyops.RoleBackup},
		{cluster + "-web1", "c5.xlarge", anyops.RoleWeb},
		{cluster + "-web2", "c5.xlarge", anyops.RoleWeb},
		{cluster + "-console1", "c5.2xlarge", anyops.RoleConsole},
		{cluster + "-console2", "c5.2xlarge", anyops.RoleConsole},
		{cluster + "-task1", "c5.large", anyops.RoleTask},
	}
	for i, sp := range specs {
		f.Servers = append(f.Servers, Server{
			Name: sp.name, InstanceID: demoID("i-", sp.name), Role: sp.role, Zone: zone,
			Cluster: cluster, State: anyops.ServerRunning, InstanceType: sp.instanceType,
			PrivateIP: fmt.Sprintf("10.0.1.%d", 10+i),
		})
		f.Volumes = append(f.Volumes, shapeVolume(sp.name+"/boot", anyops.VolumeBoot, 20, cluster, zone, sp.name, "/dev/xvda", ""))
	}
	devices := []string{"/dev/xvdf", "/dev/xvdg", "/dev/xvdh", "/dev/xvdi"}
	for i := 0; i < DemoHomeVolumes; i++ {
		primary := shapeVolume(fmt.Sprintf("%s/home%d", file, i), anyops.VolumeHome, 500, cluster, zone, file, devices[i], "md0")
		secondary := shapeVolume(fmt.Sprintf("%s/home%d", backup, i), anyops.VolumeHome, 500, cluster, zone, backup, devices[i], "md0")
		f.Volumes = append(f.Volumes, primary, secondary)
		f.Replicas = append(f.Replicas, Replica{
			Name: fmt.Sprintf("%s-r%d", cluster, i), Cluster: cluster,
			PrimaryServer: file, SecondaryServer: backup,
			PrimaryVolume: primary.VolumeID, SecondaryVolume: secondary.VolumeID,
			ConnectionState: "Connected", PrimaryDiskState: "UpToDate", SecondaryDiskState: "UpToDate",
			SyncPercent: 100, State: anyops.ReplicaUpToDate,
		})
	}
	f.Volumes = append(f.Volumes,
		shapeVolume(file+"/logs", anyops.VolumeLogs, 200, cluster, zone, file, "/dev/xvdj", ""),
		shapeVolume(file+"/dropbox", anyops.VolumeDropbox, 100, cluster, zone, file, "/dev/xvdk", ""),
	)
	return f
}

func shapeVolume(name string, kind anyops.VolumeKind, sizeGiB int, cluster, zone, server, device, raid string) Volume {
	return Volume{
		VolumeID: demoID("vol-", name), Kind: kind, Criticality: anyops.DefaultCriticality(kind),
		SizeGiB: sizeGiB, Zone: zone, Cluster: cluster, State: anyops.VolumeInUse,
		Server: server, Device: device, RAIDGroup: raid,
	}
}

// LoadFleet inserts a fleet in one transaction; any row that exists already makes it fail
// with ECONFLICT and leaves nothing behind.
func (s *Store) LoadFleet(ctx context.Context, f Fleet) error {
	return dbError(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return loadFleet(tx, f)
	}), "load fleet")
}

func loadFleet(tx *gorm.DB, f Fleet) error {
	for _, rows := range []any{f.Zones, f.Releases, f.Clusters, f.Servers, f.Volumes, f.Replicas, f.WebApps} {
		if err := createAll(tx, rows); err != nil {
			return err
		}
	}
	return nil
}

// createAll inserts a slice of rows; an empty slice is nothing to do (GORM refuses it).
func createAll(tx *gorm.DB, rows any) error {
	if reflect.ValueOf(rows).Len() == 0 {
		return nil
	}
	return tx.Create(rows).Error
}

// seedLock is the PostgreSQL advisory lock key of SeedDemoFleet ("seed" in ASCII).
const seedLock = 0x73656564

// SeedDemoFleet loads DemoFleet into an empty inventory (images come from the console hosts
// as they register: activities.RegisterConsoleHost). It does nothing and returns false when
// any zone exists, so calling it at every start is safe.
func (s *Store) SeedDemoFleet(ctx context.Context) (seeded bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.driver == DriverPostgres {
			// Two processes starting on one empty database must not both seed it.
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", seedLock).Error; err != nil {
				return err
			}
		}
		var zones int64
		if err := tx.Model(&Zone{}).Count(&zones).Error; err != nil {
			return err
		}
		if zones > 0 {
			return nil
		}
		if err := loadFleet(tx, DemoFleet()); err != nil {
			return err
		}
		seeded = true
		return nil
	})
	if err != nil {
		return false, dbError(err, "seed demo fleet")
	}
	return seeded, nil
}

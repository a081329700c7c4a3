package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// UserChecks runs the users' health checks of a rollout (FleetPatch's watch_users): the
// inventory says which servers users reach, SSM probes them.
type UserChecks struct {
	Inventory *Inventory
	Hosts     *Hosts
}

// WatchUsersInput is what to watch and how often.
type WatchUsersInput struct {
	// Advisory is the rollout's: the checks end once its state in the inventory is final.
	Advisory string `json:"advisory"`
	// Target's roles are those with a health probe (web, console); its clusters and zones
	// the rollout's.
	Target   anyops.PatchTarget `json:"target"`
	Interval time.Duration      `json:"interval"`
}

// maxUserErrorsListed bounds the failed checks named (all are counted).
const maxUserErrorsListed = 20

// UsersWatched is what the checks found: how many probes, how many failed on a server in
// rotation, and the first of those.
type UsersWatched struct {
	Checks int      `json:"checks"`
	Errors int      `json:"errors"`
	List   []string `json:"list,omitempty"`
}

// WatchUsers probes, every Interval until the rollout's state in the inventory is final (or
// the activity is cancelled, as when its workflow ends), every server of the target in
// rotation (Inventory.InRotation) at once with its service's health probe, once (a user does
// not retry). A failed probe of a server that was in rotation before and after it is a user
// error; one drained meanwhile had its traffic moved off. The rounds run here, not in the
// workflow, so their pace does not depend on workflow task latency. Its counts are
// heartbeated, so a retry after a crash goes on from them.
func (u *UserChecks) WatchUsers(ctx context.Context, in WatchUsersInput) (UsersWatched, error) {
	var (
		seen   UsersWatched
		seenMu sync.Mutex
	)
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &seen)
	}
	// Heartbeats go every second whatever a round takes, so a short heartbeat timeout holds
	// and the cancellation at the rollout's end arrives soon (it comes with a heartbeat).
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-beat.C:
				seenMu.Lock()
				now := seen
				seenMu.Unlock()
				activity.RecordHeartbeat(ctx, now)
			}
		}
	}()
	interval := in.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	// The probes run outside the activity's context: many commands in one activity have no
	// attempt of their own to heartbeat for.
	probeCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	inRotation := func() map[string]PatchTargetServer {
		servers, err := u.Inventory.InRotation(ctx, in.Target)
		if err != nil {
			return nil // the inventory did not answer: this round checks nothing
		}
		out := map[string]PatchTargetServer{}
		for _, s := range servers {
			out[s.Name] = s
		}
		return out
	}
	for {
		if r, err := u.Inventory.Store.GetPatchRollout(ctx, in.Advisory); err == nil && r.State.Final() {
			break
		}
		before := inRotation()
		var (
			mu     sync.Mutex
			wg     sync.WaitGroup
			failed = map[string]string{}
		)
		for name, s := range before {
			wg.Go(func() {
				out, err := u.Hosts.HealthProbe(probeCtx, HealthProbeInput{InstanceID: s.InstanceID, URL: anyops.ServiceHealthURL(s.Role)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					failed[name] = err.Error()
				case !out.Healthy:
					failed[name] = out.Detail
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			break // probes cut short by the end are no checks
		}
		var after map[string]PatchTargetServer
		if len(failed) > 0 {
			after = inRotation()
		}
		seenMu.Lock()
		seen.Checks += len(before)
		for name, why := range failed {
			if _, still := after[name]; !still {
				continue
			}
			seen.Errors++
			if len(seen.List) < maxUserErrorsListed {
				seen.List = append(seen.List, fmt.Sprintf("%s %s: %s", time.Now().UTC().Format(time.RFC3339Nano), name, why))
			}
		}
		seenMu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(interval):
			continue
		}
		break
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	if err := ctx.Err(); err != nil {
		return seen, temporal.NewCanceledError(seen)
	}
	return seen, nil
}

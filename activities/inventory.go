package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// Inventory groups the activities that read and write the inventory database. Workflows refer
// to its methods through a nil *Inventory; the worker registers one with a Store.
type Inventory struct {
	Store *inventory.Store
}

// FleetCounts is the inventory's FleetSummary under the name workflows use for it, so that
// workflows need not import the store: servers by role and zone, volumes by kind, replicas by
// state, and the totals.
type FleetCounts = inventory.FleetSummary

// CountFleet counts the fleet in the inventory.
func (a *Inventory) CountFleet(ctx context.Context) (FleetCounts, error) {
	sum, err := a.Store.FleetSummary(ctx)
	return sum, classify(err)
}

// AuditRecord is one audit event to record.
type AuditRecord struct {
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Subject string         `json:"subject"`
	Summary map[string]any `json:"summary"`
}

// RecordAudit appends an audit event. A retry after a lost reply records the event again;
// the audit log tolerates that better than losing it.
func (a *Inventory) RecordAudit(ctx context.Context, r AuditRecord) error {
	e := inventory.AuditEvent{Actor: r.Actor, Action: r.Action, Subject: r.Subject, Summary: r.Summary}
	if activity.IsActivity(ctx) {
		// A retry after a lost reply carries the same activity id: it finds the first record.
		info := activity.GetInfo(ctx)
		key := info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
		e.IdempotencyKey = &key
	}
	_, err := a.Store.RecordAudit(ctx, e)
	return classify(err)
}

// NFSWatchTarget is what one round of a file server's NFS watch probes.
type NFSWatchTarget struct {
	// Watch is false once the server is no longer a file server that may serve (gone from the
	// inventory, another role, stopped or terminated): the watch then ends. Reason says why.
	Watch      bool   `json:"watch"`
	Reason     string `json:"reason,omitempty"`
	Server     string `json:"server"`
	Cluster    string `json:"cluster"`
	InstanceID string `json:"instance_id"`
	// PrivateIP is the server's address: a client's mount that talks to another address is
	// served by another server (after a failover) and says nothing about this one.
	PrivateIP string `json:"private_ip"`
	// Clients are the instance ids of running web, console and task servers of its cluster,
	// which mount its NFS export, at most the number asked for, in name order.
	Clients []string `json:"clients"`
}

// NFSWatchTargetInput asks for the target of a server's watch.
type NFSWatchTargetInput struct {
	Server     string `json:"server"`
	MaxClients int    `json:"max_clients"`
}

// NFSWatchTarget reads, from the inventory, whether a server is still a file server to watch
// and which clients probe it.
func (a *Inventory) NFSWatchTarget(ctx context.Context, in NFSWatchTargetInput) (NFSWatchTarget, error) {
	out := NFSWatchTarget{Server: in.Server}
	srv, err := a.Store.GetServer(ctx, in.Server)
	switch {
	case anyops.ErrorCode(err) == anyops.ENOTFOUND:
		out.Reason = "the inventory has no server " + in.Server
		return out, nil
	case err != nil:
		return out, classify(err)
	case srv.Role != anyops.RoleFile:
		out.Reason = in.Server + " is a " + string(srv.Role) + " server now, not a file server"
		return out, nil
	case !watchable(srv):
		out.Reason = in.Server + " is " + string(srv.State)
		return out, nil
	}
	out.Watch, out.Cluster, out.InstanceID, out.PrivateIP = true, srv.Cluster, srv.InstanceID, srv.PrivateIP
	servers, _, err := a.Store.ListServers(ctx, inventory.ServerFilter{Cluster: srv.Cluster, State: anyops.ServerRunning, Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		return out, classify(err)
	}
	for _, s := range servers {
		if len(out.Clients) >= in.MaxClients {
			break
		}
		if (s.Role == anyops.RoleWeb || s.Role == anyops.RoleConsole || s.Role == anyops.RoleTask) && s.InstanceID != "" {
			out.Clients = append(out.Clients, s.InstanceID)
		}
	}
	return out, nil
}

// FileServers lists the names of the inventory's file servers that serve data — the primary
// of some DRBD resource in the inventory — and may serve (neither stopping, stopped nor
// terminated): the servers NFS watches watch. A file server still being built (a new cluster's
// before BuildCluster records its replicas, a failover's replacement or a warm spare before the
// failover records it as the primary) does not serve yet: watching it would raise an alarm and
// start a failover of a server that was never up.
func (a *Inventory) FileServers(ctx context.Context) ([]string, error) {
	servers, _, err := a.Store.ListServers(ctx, inventory.ServerFilter{Role: anyops.RoleFile, Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		return nil, classify(err)
	}
	primaries := map[string]bool{}
	for cursor := ""; ; {
		replicas, next, err := a.Store.ListReplicas(ctx, inventory.ReplicaFilter{Page: inventory.Page{Limit: inventory.MaxLimit, Cursor: cursor}})
		if err != nil {
			return nil, classify(err)
		}
		for _, r := range replicas {
			primaries[r.PrimaryServer] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	names := []string{}
	for _, s := range servers {
		if watchable(s) && primaries[s.Name] {
			names = append(names, s.Name)
		}
	}
	return names, nil
}

// IncidentEventWorkflow is the kind of the timeline events a recovery workflow writes on its
// incident: what it did and decided (the inventory's kind, under a name workflows can use).
const IncidentEventWorkflow = inventory.IncidentEventWorkflow

// IncidentEventResolved is the kind of the event that resolves an incident: the recovery the
// alarm started writes it when it has brought the service back.
const IncidentEventResolved = inventory.IncidentEventResolved

// IncidentNote is one line a workflow adds to its incident's timeline.
type IncidentNote struct {
	IncidentID int64     `json:"incident_id"`
	Kind       string    `json:"kind"`
	Message    string    `json:"message"`
	At         time.Time `json:"at"` // the workflow's time: the same on every retry
}

// NoteIncident appends the note to the incident's timeline, once: a retry after a lost reply
// finds the note (the same kind, message and time) and adds nothing.
func (a *Inventory) NoteIncident(ctx context.Context, n IncidentNote) error {
	inc, err := a.Store.GetIncident(ctx, n.IncidentID)
	if err != nil {
		return classify(err)
	}
	for _, ev := range inc.Timeline {
		if ev.Kind == n.Kind && ev.Message == n.Message && ev.At.Equal(n.At.UTC().Truncate(time.Microsecond)) {
			return nil
		}
	}
	_, err = a.Store.AppendIncidentEvent(ctx, n.IncidentID, n.Kind, n.Message, n.At)
	return classify(err)
}

// classify makes errors no retry can fix non-retryable, typed with their anyops code (for
// example "invalid"): a rejected input stays rejected. Everything else (the database down)
// is left for the retry policy.
func classify(err error) error {
	var e *anyops.Error
	if err == nil || !errors.As(err, &e) || e.Code == anyops.EUNAVAILABLE || e.Code == anyops.EINTERNAL {
		return err
	}
	return temporal.NewNonRetryableApplicationError(e.Message, e.Code, err)
}

// listAll reads every page of a paged list.
func listAll[T any](list func(inventory.Page) ([]T, string, error)) ([]T, error) {
	var all []T
	p := inventory.Page{Limit: inventory.MaxLimit}
	for {
		rows, next, err := list(p)
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
		if next == "" {
			return all, nil
		}
		p.Cursor = next
	}
}

// eachPage calls fn for every row of a paged list. It reads all pages first, so fn may
// write to the rows being listed.
func eachPage[T any](list func(inventory.Page) ([]T, string, error), fn func(T) error) error {
	all, err := listAll(list)
	if err != nil {
		return err
	}
	for _, row := range all {
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

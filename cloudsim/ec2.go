package cloudsim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

const ownerID = "123456789012"

// apiError is an AWS error: EC2 writes it as XML, SSM as JSON.
type apiError struct {
	Code    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errInvalidParameter(msg string) *apiError {
	return &apiError{Code: "InvalidParameterValue", Message: msg, Status: 400}
}

func errMissing(name string) *apiError {
	return &apiError{Code: "MissingParameter", Message: fmt.Sprintf("The request must contain the parameter %s", name), Status: 400}
}

func errCode(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: 400}
}

type ec2Action func(s *Sim, q *query, now time.Time) (any, *apiError)

// ec2Actions is every EC2 action cloudsim implements; anything else is InvalidAction.
var ec2Actions = map[string]ec2Action{
	"DescribeAvailabilityZones":    (*Sim).describeAvailabilityZones,
	"RunInstances":                 (*Sim).runInstances,
	"TerminateInstances":           (*Sim).terminateInstances,
	"StopInstances":                (*Sim).stopInstances,
	"StartInstances":               (*Sim).startInstances,
	"DescribeInstances":            (*Sim).describeInstances,
	"DescribeInstanceStatus":       (*Sim).describeInstanceStatus,
	"CreateVolume":                 (*Sim).createVolume,
	"DeleteVolume":                 (*Sim).deleteVolume,
	"AttachVolume":                 (*Sim).attachVolume,
	"DetachVolume":                 (*Sim).detachVolume,
	"DescribeVolumes":              (*Sim).describeVolumes,
	"ModifyVolume":                 (*Sim).modifyVolume,
	"DescribeVolumesModifications": (*Sim).describeVolumesModifications,
	"CreateSnapshot":               (*Sim).createSnapshot,
	"DescribeSnapshots":            (*Sim).describeSnapshots,
	"CopySnapshot":                 (*Sim).copySnapshot,
	"DeleteSnapshot":               (*Sim).deleteSnapshot,
	"CreateTags":                   (*Sim).createTags,
	"DeleteTags":                   (*Sim).deleteTags,
	"DescribeTags":                 (*Sim).describeTags,
}

// serveEC2 answers one EC2 Query request.
func (s *Sim) serveEC2(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	var body []byte
	switch r.Method {
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxQueryBody+1))
		if err != nil {
			writeEC2Error(w, reqID, errInvalidParameter("cannot read request body"))
			return
		}
		body = b
	case http.MethodGet:
		body = []byte(r.URL.RawQuery)
	default:
		writeEC2Error(w, reqID, &apiError{Code: "InvalidAction", Message: "EC2 Query requests are POST or GET", Status: 400})
		return
	}
	q, aerr := parseQuery(body)
	if aerr != nil {
		writeEC2Error(w, reqID, aerr)
		return
	}
	if isSNSAction(q.Action) {
		s.answerSNS(w, q.Params) // SNS shares the Query protocol: its actions are answered here too
		return
	}
	act, ok := ec2Actions[q.Action]
	if !ok {
		writeEC2Error(w, reqID, &apiError{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", q.Action), Status: 400})
		return
	}
	if dry, _ := q.bool("DryRun"); dry {
		writeEC2Error(w, reqID, &apiError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: 412})
		return
	}
	now := s.begin()
	if aerr := s.throttled(q.Action, "RequestLimitExceeded", now); aerr != nil {
		s.mu.Unlock()
		writeEC2Error(w, reqID, aerr)
		return
	}
	resp, aerr := act(s, q, now)
	s.reevaluate(now) // replication links, clients and alarms follow what the action changed, at once
	s.mu.Unlock()
	if aerr != nil {
		s.log.Debug("cloudsim ec2 error", "action", q.Action, "code", aerr.Code, "msg", aerr.Message)
		writeEC2Error(w, reqID, aerr)
		return
	}
	if rs, ok := resp.(interface{ setRequestID(string) }); ok {
		rs.setRequestID(reqID)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{Name: xml.Name{Local: q.Action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ec2Namespace}}}
	if err := enc.EncodeElement(resp, start); err != nil {
		s.log.Error("cloudsim: encode response", "action", q.Action, "err", err)
		writeEC2Error(w, reqID, &apiError{Code: "InternalError", Message: "An internal error has occurred", Status: 500})
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	_, _ = w.Write(buf.Bytes())
}

func writeEC2Error(w http.ResponseWriter, reqID string, e *apiError) {
	out, _ := xml.Marshal(xErrorResponse{Errors: []xError{{Code: e.Code, Message: e.Message}}, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	status := e.Status
	if status == 0 {
		status = 400
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// byID looks up a resource as EC2 does: a malformed id and an unknown one are different errors.
func byID[T any](m map[string]*T, id, prefix, kind, notFound, notFoundMsg string) (*T, *apiError) {
	if !strings.HasPrefix(id, prefix) {
		return nil, errCode(kind+".Malformed", "Invalid id: \"%s\"", id)
	}
	r, ok := m[id]
	if !ok {
		return nil, errCode(notFound, notFoundMsg, id)
	}
	return r, nil
}

func (s *Sim) instanceByID(id string) (*instance, *apiError) {
	return byID(s.st.Instances, id, "i-", "InvalidInstanceID", "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist")
}

func (s *Sim) volumeByID(id string) (*volume, *apiError) {
	return byID(s.st.Volumes, id, "vol-", "InvalidVolumeID", "InvalidVolume.NotFound", "The volume '%s' does not exist.")
}

func (s *Sim) snapshotByID(id string) (*snapshot, *apiError) {
	return byID(s.st.Snapshots, id, "snap-", "InvalidSnapshotID", "InvalidSnapshot.NotFound", "The snapshot '%s' does not exist.")
}

func (s *Sim) checkZone(z string) *apiError {
	if !s.zone[z] {
		return errInvalidParameter(fmt.Sprintf("Invalid availability zone: [%s]", z))
	}
	return nil
}

// clientToken looks up an earlier call with the same token: found returns its resources, a
// different request with the same token is IdempotentParameterMismatch.
func (s *Sim) clientToken(q *query) (resources []string, found bool, aerr *apiError) {
	tok := q.get("ClientToken")
	if tok == "" {
		return nil, false, nil
	}
	if len(tok) > 64 {
		return nil, false, errInvalidParameter("ClientToken must be at most 64 characters")
	}
	prev, ok := s.st.Tokens[q.Action+"/"+tok]
	if !ok {
		return nil, false, nil
	}
	if prev.ParamHash != q.paramHash() {
		return nil, false, errCode("IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
	}
	return prev.Resources, true, nil
}

func (s *Sim) rememberToken(q *query, resources []string) {
	if tok := q.get("ClientToken"); tok != "" {
		s.st.Tokens[q.Action+"/"+tok] = &clientTok{Action: q.Action, ParamHash: q.paramHash(), Resources: resources}
	}
}

// selectByID returns, in id order, the resources of m that ids names (all when it is empty)
// and that pass every filter; values gives a resource's values for a filter name.
func selectByID[T any](m map[string]*T, ids []string, fs []filter, values func(r *T, name string) ([]string, bool)) ([]*T, *apiError) {
	var out []*T
	for _, id := range sortedKeys(m) {
		r := m[id]
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		ok, aerr := matchFilters(fs, func(n string) ([]string, bool) { return values(r, n) })
		if aerr != nil {
			return nil, aerr
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

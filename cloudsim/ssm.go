package cloudsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// maxOutput is how much of a command's output GetCommandInvocation returns, as SSM does.
const maxOutput = 24000

// command is one SendCommand and its per-instance invocations.
type command struct {
	ID           string                 `json:"id"`
	DocumentName string                 `json:"document_name"`
	Comment      string                 `json:"comment,omitempty"`
	InstanceIDs  []string               `json:"instance_ids"`
	Parameters   map[string][]string    `json:"parameters"`
	Requested    time.Time              `json:"requested"`
	Invocations  map[string]*invocation `json:"invocations"`
}

type invocation struct {
	InstanceID  string    `json:"instance_id"`
	Status      string    `json:"status"`       // InProgress until EndTime, then FinalStatus
	FinalStatus string    `json:"final_status"` // Success, Failed, TimedOut
	ExitCode    int       `json:"exit_code"`
	Stdout      string    `json:"stdout"`
	Stderr      string    `json:"stderr"`
	Start       time.Time `json:"start"`
	EndTime     time.Time `json:"end"`
}

type ssmOp func(s *Sim, body []byte, now time.Time) (any, *apiError)

var ssmOps = map[string]ssmOp{
	"SendCommand":                 (*Sim).sendCommand,
	"GetCommandInvocation":        (*Sim).getCommandInvocation,
	"ListCommands":                (*Sim).listCommands,
	"DescribeInstanceInformation": (*Sim).describeInstanceInformation,
}

// serveSSM answers one SSM JSON request; X-Amz-Target names the operation.
func (s *Sim) serveSSM(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	opName, found := strings.CutPrefix(target, "AmazonSSM.")
	op, known := ssmOps[opName]
	if !found || !known {
		writeSSMError(w, &apiError{Code: "UnknownOperationException", Message: fmt.Sprintf("Unknown operation %s", target), Status: 400})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxQueryBody+1))
	if err != nil || len(body) > maxQueryBody {
		writeSSMError(w, &apiError{Code: "SerializationException", Message: "cannot read request body", Status: 400})
		return
	}
	now := s.begin()
	if aerr := s.throttled(opName, "ThrottlingException", now); aerr != nil {
		s.mu.Unlock()
		writeSSMError(w, aerr)
		return
	}
	resp, aerr := op(s, body, now)
	s.reevaluate(now)
	s.mu.Unlock()
	if aerr != nil {
		writeSSMError(w, aerr)
		return
	}
	out, err := json.Marshal(resp)
	if err != nil {
		s.log.Error("cloudsim: encode ssm response", "op", opName, "err", err)
		writeSSMError(w, &apiError{Code: "InternalServerError", Message: "internal error", Status: 500})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	_, _ = w.Write(out)
}

func writeSSMError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", e.Code)
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	w.WriteHeader(e.Status)
	out, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
	_, _ = w.Write(out)
}

// decodeJSON decodes a request body strictly enough to catch a wrong shape.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{Code: "SerializationException", Message: "cannot parse request: " + err.Error(), Status: 400}
	}
	return nil
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func ssmErr(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...), Status: 400}
}

func (s *Sim) sendCommand(body []byte, now time.Time) (any, *apiError) {
	var in struct {
		InstanceIDs    []string            `json:"InstanceIds"`
		Targets        []json.RawMessage   `json:"Targets"`
		DocumentName   string              `json:"DocumentName"`
		Parameters     map[string][]string `json:"Parameters"`
		Comment        string              `json:"Comment"`
		TimeoutSeconds *int                `json:"TimeoutSeconds"`
	}
	if aerr := decodeJSON(body, &in); aerr != nil {
		return nil, aerr
	}
	switch {
	case in.DocumentName == "":
		return nil, ssmErr("ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null")
	case in.DocumentName != "AWS-RunShellScript":
		return nil, ssmErr("InvalidDocument", "Document %s does not exist in your account (cloudsim runs AWS-RunShellScript only)", in.DocumentName)
	case len(in.Targets) > 0:
		return nil, ssmErr("InvalidParameters", "cloudsim sends commands by InstanceIds, not Targets")
	case len(in.InstanceIDs) == 0:
		return nil, ssmErr("InvalidInstanceId", "InstanceIds must name at least one instance")
	case len(in.InstanceIDs) > 50:
		return nil, ssmErr("ValidationException", "InstanceIds has more than 50 members")
	case len(in.Parameters["commands"]) == 0:
		return nil, ssmErr("InvalidParameters", "Parameter \"commands\" is required and must not be empty")
	}
	for k := range in.Parameters {
		if k != "commands" && k != "executionTimeout" && k != "workingDirectory" {
			return nil, ssmErr("InvalidParameters", "Parameter %q is not a parameter of AWS-RunShellScript", k)
		}
	}
	timeout := commandTimeout
	if t := in.Parameters["executionTimeout"]; len(t) > 0 {
		n, err := strconv.Atoi(t[0])
		if err != nil || n < 1 || n > 172800 {
			return nil, ssmErr("InvalidParameters", "executionTimeout must be a number of seconds between 1 and 172800")
		}
		timeout = time.Duration(n) * time.Second
	}
	var bad []string
	for _, id := range in.InstanceIDs {
		if !s.reachable(id) {
			bad = append(bad, id)
		}
	}
	if len(bad) > 0 {
		return nil, ssmErr("InvalidInstanceId", "Instances [[%s]] not in a valid state for account %s", strings.Join(bad, ", "), ownerID)
	}
	script := strings.Join(in.Parameters["commands"], "\n")
	c := &command{ID: uuid.NewString(), DocumentName: in.DocumentName, Comment: in.Comment, InstanceIDs: in.InstanceIDs,
		Parameters: in.Parameters, Requested: now, Invocations: map[string]*invocation{}}
	for _, id := range in.InstanceIDs {
		h := s.st.Hosts[id]
		r := s.runScript(h, s.st.Instances[id], script, now)
		inv := &invocation{InstanceID: id, Status: "InProgress", ExitCode: r.code, Stdout: r.out, Stderr: r.err, Start: now, EndTime: now.Add(r.dur)}
		switch {
		case r.dur > timeout:
			inv.FinalStatus, inv.ExitCode, inv.EndTime = "TimedOut", -1, now.Add(timeout)
		case r.code == 0:
			inv.FinalStatus = "Success"
		default:
			inv.FinalStatus = "Failed"
		}
		c.Invocations[id] = inv
		s.event(now, "ssm.command.sent", id, "command %s on %s: %q", c.ID, id, truncate(script, 200))
	}
	s.st.Commands[c.ID] = c
	s.pruneCommands(now)
	s.markDirty()
	return map[string]any{"Command": s.commandJSON(c, now)}, nil
}

// pruneCommands forgets finished commands older than a simulated day, so the state stays small.
func (s *Sim) pruneCommands(now time.Time) {
	for id, c := range s.st.Commands {
		if now.Sub(c.Requested) > 24*time.Hour {
			delete(s.st.Commands, id)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *Sim) commandJSON(c *command, now time.Time) map[string]any {
	status, completed, errs := "Success", 0, 0
	for _, inv := range c.Invocations {
		switch inv.Status {
		case "InProgress":
			status = "InProgress"
		case "Success":
			completed++
		default:
			completed++
			errs++
		}
	}
	if status != "InProgress" && errs > 0 {
		status = "Failed"
	}
	return map[string]any{
		"CommandId": c.ID, "DocumentName": c.DocumentName, "DocumentVersion": "$DEFAULT", "Comment": c.Comment,
		"InstanceIds": c.InstanceIDs, "Parameters": c.Parameters, "RequestedDateTime": epoch(c.Requested),
		"ExpiresAfter": epoch(c.Requested.Add(commandTimeout)), "Status": status, "StatusDetails": status,
		"TargetCount": len(c.InstanceIDs), "CompletedCount": completed, "ErrorCount": errs, "DeliveryTimedOutCount": 0,
		"MaxConcurrency": "50", "MaxErrors": "0", "Targets": []any{},
	}
}

func (s *Sim) getCommandInvocation(body []byte, now time.Time) (any, *apiError) {
	var in struct {
		CommandID  string `json:"CommandId"`
		InstanceID string `json:"InstanceId"`
		PluginName string `json:"PluginName"`
	}
	if aerr := decodeJSON(body, &in); aerr != nil {
		return nil, aerr
	}
	if _, err := uuid.Parse(in.CommandID); err != nil || len(in.CommandID) != 36 {
		return nil, ssmErr("InvalidCommandId", "Invalid command id %q", in.CommandID)
	}
	if in.InstanceID == "" {
		return nil, ssmErr("InvalidInstanceId", "InstanceId is required")
	}
	if in.PluginName != "" && in.PluginName != "aws:runShellScript" {
		return nil, ssmErr("InvalidPluginName", "Plugin %s is not part of AWS-RunShellScript", in.PluginName)
	}
	c, ok := s.st.Commands[in.CommandID]
	if !ok {
		return nil, ssmErr("InvocationDoesNotExist", "Command %s does not exist", in.CommandID)
	}
	inv, ok := c.Invocations[in.InstanceID]
	if !ok {
		return nil, ssmErr("InvocationDoesNotExist", "Command %s was not sent to instance %s", in.CommandID, in.InstanceID)
	}
	out := map[string]any{
		"CommandId": c.ID, "InstanceId": inv.InstanceID, "Comment": c.Comment, "DocumentName": c.DocumentName,
		"DocumentVersion": "$DEFAULT", "PluginName": "aws:runShellScript", "Status": inv.Status, "StatusDetails": inv.Status,
		"ExecutionStartDateTime": inv.Start.UTC().Format(ec2TimeFormat),
		"ResponseCode":           -1, "StandardOutputContent": "", "StandardErrorContent": "",
		"StandardOutputUrl": "", "StandardErrorUrl": "", "CloudWatchOutputConfig": map[string]any{"CloudWatchOutputEnabled": false},
	}
	if inv.Status == "InProgress" {
		out["ExecutionElapsedTime"] = isoDuration(now.Sub(inv.Start))
		return out, nil
	}
	out["ResponseCode"] = inv.ExitCode
	out["ExecutionEndDateTime"] = inv.EndTime.UTC().Format(ec2TimeFormat)
	out["ExecutionElapsedTime"] = isoDuration(inv.EndTime.Sub(inv.Start))
	out["StandardOutputContent"] = truncate(inv.Stdout, maxOutput)
	out["StandardErrorContent"] = truncate(inv.Stderr, maxOutput)
	return out, nil
}

// listCommands is SSM's ListCommands: the commands sent, newest first, by CommandId or
// InstanceId, with the filters InvokedAfter, InvokedBefore, Status and DocumentName (the
// simulation keeps a day of commands; SSM keeps 30).
func (s *Sim) listCommands(body []byte, now time.Time) (any, *apiError) {
	var in struct {
		CommandID  string `json:"CommandId"`
		InstanceID string `json:"InstanceId"`
		MaxResults int    `json:"MaxResults"`
		NextToken  string `json:"NextToken"`
		Filters    []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"Filters"`
	}
	if aerr := decodeJSON(body, &in); aerr != nil {
		return nil, aerr
	}
	if in.MaxResults == 0 {
		in.MaxResults = 50
	}
	if in.MaxResults < 1 || in.MaxResults > 50 {
		return nil, ssmErr("ValidationException", "MaxResults must be between 1 and 50")
	}
	var after, before time.Time
	status, document := "", ""
	for _, f := range in.Filters {
		switch f.Key {
		case "InvokedAfter", "InvokedBefore":
			t, err := time.Parse(time.RFC3339, f.Value)
			if err != nil {
				return nil, ssmErr("InvalidFilterKey", "%s must be an ISO 8601 time, got %q", f.Key, f.Value)
			}
			if f.Key == "InvokedAfter" {
				after = t
			} else {
				before = t
			}
		case "Status":
			status = f.Value
		case "DocumentName":
			document = f.Value
		default:
			return nil, ssmErr("InvalidFilterKey", "filter key %s is not simulated (InvokedAfter, InvokedBefore, Status, DocumentName)", f.Key)
		}
	}
	var list []*command
	for _, c := range s.st.Commands {
		switch {
		case in.CommandID != "" && c.ID != in.CommandID,
			in.InstanceID != "" && c.Invocations[in.InstanceID] == nil,
			!after.IsZero() && c.Requested.Before(after),
			!before.IsZero() && c.Requested.After(before),
			document != "" && c.DocumentName != document:
			continue
		}
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b *command) int {
		if d := b.Requested.Compare(a.Requested); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := []map[string]any{}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 || n > len(list) {
			return nil, ssmErr("InvalidNextToken", "The specified token is not valid")
		}
		start = n
	}
	next := ""
	for i := start; i < len(list); i++ {
		cj := s.commandJSON(list[i], now)
		if status != "" && cj["Status"] != status {
			continue
		}
		if len(out) == in.MaxResults {
			next = strconv.Itoa(i)
			break
		}
		out = append(out, cj)
	}
	resp := map[string]any{"Commands": out}
	if next != "" {
		resp["NextToken"] = next
	}
	return resp, nil
}

// isoDuration formats like SSM's ExecutionElapsedTime: PT1.234S.
func isoDuration(d time.Duration) string {
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}

func (s *Sim) describeInstanceInformation(body []byte, now time.Time) (any, *apiError) {
	var in struct {
		Filters []struct {
			Key    string   `json:"Key"`
			Values []string `json:"Values"`
		} `json:"Filters"`
		InstanceInformationFilterList []struct {
			Key      string   `json:"key"`
			ValueSet []string `json:"valueSet"`
		} `json:"InstanceInformationFilterList"`
	}
	if aerr := decodeJSON(body, &in); aerr != nil {
		return nil, aerr
	}
	want := map[string][]string{}
	for _, f := range in.Filters {
		want[f.Key] = f.Values
	}
	for _, f := range in.InstanceInformationFilterList {
		want[f.Key] = f.ValueSet
	}
	for k := range want {
		if k != "InstanceIds" && k != "PingStatus" {
			return nil, ssmErr("InvalidInstanceInformationFilterValue", "filter key %s is not simulated (InstanceIds, PingStatus)", k)
		}
	}
	list := []map[string]any{}
	for _, id := range sortedKeys(s.st.Instances) {
		inst := s.st.Instances[id]
		if inst.State == stateTerminated || s.st.Hosts[id] == nil || s.st.Hosts[id].Boots == 0 {
			continue // the agent never registered, or the instance is gone
		}
		ping := "ConnectionLost"
		if s.reachable(id) {
			ping = "Online"
		}
		if ids, ok := want["InstanceIds"]; ok && !slices.Contains(ids, id) {
			continue
		}
		if ps, ok := want["PingStatus"]; ok && !slices.Contains(ps, ping) {
			continue
		}
		list = append(list, map[string]any{
			"InstanceId": id, "PingStatus": ping, "LastPingDateTime": epoch(now), "AgentVersion": "2.3.1319.0",
			"IsLatestVersion": true, "PlatformType": "Linux", "PlatformName": "Ubuntu", "PlatformVersion": "14.04",
			"ResourceType": "EC2Instance", "IPAddress": inst.PrivateIP, "ComputerName": s.st.Hosts[id].Hostname,
		})
	}
	return map[string]any{"InstanceInformationList": list}, nil
}

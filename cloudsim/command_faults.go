package cloudsim

import (
	"slices"
	"strings"
)

// FaultCommandFailure makes a host command fail, as a real tool sometimes does (a unit that
// does not come up, apt's lock held, a device not there yet): instance_id, command (its first
// words, e.g. "systemctl restart"), count (fail the next N runs, then end; 0: until deleted),
// exit_code (default 1). It lets tests prove that a failed command is really sent again.
const FaultCommandFailure = "command-failure"

// defaultInjectedExit is the exit code of an injected command failure unless the fault says.
const defaultInjectedExit = 1

func validateCommandFault(f *Fault) string {
	switch {
	case f.InstanceID == "":
		return "command-failure needs instance_id"
	case len(strings.Fields(f.Command)) == 0:
		return `command-failure needs command: the first words of the command to fail, e.g. "systemctl restart"`
	case f.Count < 0:
		return "count must be 0 (until deleted) or the number of runs to fail"
	case f.ExitCode < 0 || f.ExitCode > 255:
		return "exit_code must be between 1 and 255 (0 means the default, 1)"
	}
	return ""
}

// injectedFailure is what a command-failure fault makes of one command run on the host, if
// one matches: the failure, counted down.
func (x *execCtx) injectedFailure(args []string) (result, bool) {
	s := x.s
	for _, id := range sortedKeys(s.st.Faults) {
		f := s.st.Faults[id]
		if f.Type != FaultCommandFailure || f.InstanceID != x.h.InstanceID {
			continue
		}
		words := strings.Fields(f.Command)
		if len(args) < len(words) || !slices.Equal(args[:len(words)], words) {
			continue
		}
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				delete(s.st.Faults, id)
				s.event(x.now, "fault.expired", f.target(), "fault %s (command-failure) used up", id)
			}
			s.markDirty()
		}
		code := f.ExitCode
		if code == 0 {
			code = defaultInjectedExit
		}
		s.event(x.now, "host.command-failed", x.h.InstanceID, "%s failed on %s (fault %s)", f.Command, x.h.Hostname, id)
		return fail(code, "%s: failed (cloudsim fault %s)", args[0], id), true
	}
	return result{}, false
}

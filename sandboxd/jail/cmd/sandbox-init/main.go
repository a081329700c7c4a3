// Command anyops-sandbox-init is the init of every sandbox: PID 1 of its PID namespace, which
// builds its root, starts its command and reaps. It is the anyops binary's own init code in
// a binary small enough to start in about a millisecond; the jail manager runs it when it
// sits next to the anyops executable. Build it as bin/anyops-sandbox-init.
package main

import (
	"fmt"
	"os"

	"github.com/anyops/anyops/sandboxd/jail/internal/sandboxinit"
)

// It imports the init alone, not package jail: whatever this binary links is initialised on
// every sandbox start.
func main() {
	sandboxinit.MaybeRun()
	fmt.Fprintf(os.Stderr, "%s is started by anyops sandboxd as a sandbox's init, not by hand\n", sandboxinit.Arg0)
	os.Exit(2)
}

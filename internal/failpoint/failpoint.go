// Package failpoint stops the process at a named step, for crash tests:
// with ORGSVC_FAILPOINT=<name> set, the process exits with status 86 the
// moment it reaches that step, running no deferred calls and closing
// nothing, as if it had been killed.
package failpoint

import (
	"fmt"
	"os"
)

// ExitCode is the status a process stopped by a failpoint exits with.
const ExitCode = 86

// Names are the steps a failpoint can name.
var Names = []string{
	"create:before-collection",
	"create:after-collection",
	"rename:before-collection",
	"rename:after-collection",
	"delete:before-drop",
	"delete:after-drop",
	"delete:after-account",
	"keyed-create:after-claim",
	"keyed-create:after-insert",
	"member:before-change",
	"member:after-change",
	"accept:after-membership",
	"accept:before-settle",
	// The runner's, around the audit events of any operation.
	"create:after-events",
	"rename:before-events",
	"rename:after-events",
	"member:after-events",
	"delete:after-events",
	"import:before-swap",
	"import:between-renames",
	"import:after-swap",
	"import:before-merge",
	"import:after-merge",
	// The restore window (ORG_DELETE_RETENTION): a deletion archives the
	// organization and moves its collection to the trash; a purge drops
	// both; a restore brings them back.
	"delete:before-trash",
	"delete:after-trash",
	"purge:after-drop",
	"restore:before-move",
	"restore:after-move",
}

// armed is read once; without the variable, Reach is a comparison with the
// empty string.
var armed = os.Getenv("ORGSVC_FAILPOINT")

// Reach stops the process if the failpoint armed is name.
func Reach(name string) {
	if armed != "" && armed == name {
		fmt.Fprintf(os.Stderr, "orgsvc: failpoint %s reached: exiting with status %d\n", name, ExitCode)
		os.Exit(ExitCode)
	}
}

package anyops

// MaxNameLen bounds every id and name a client sends: operation ids (business keys such as
// "failover/live-file", or a scheduled run's "fleet-sync-2026-03-01T10:00:00Z"), server,
// zone, cluster and user names, image names and versions, console ids.
const MaxNameLen = 255

// nameChars are the bytes an id or name may hold besides ASCII letters and digits: those of
// every business key, resource name, RFC 3339 time and base64url text the platform makes.
const nameChars = "-_.:/@+"

// CheckName validates an id or name a client sent (in a path, a query or a body) before it
// reaches Temporal or the database: 1 to MaxNameLen bytes of ASCII letters, digits and
// - _ . : / @ +. A NUL, a space, a control byte or any other character is EINVALID, naming
// the field, so a bad id is a 400 and never an error of the store or of Temporal.
func CheckName(field, value string) error {
	if value == "" || len(value) > MaxNameLen {
		return Errorf(EINVALID, "%s must be 1 to %d bytes long", field, MaxNameLen)
	}
	for i := 0; i < len(value); i++ {
		if !nameByte(value[i]) {
			return Errorf(EINVALID, "%s %q may hold only ASCII letters, digits and %s", field, value, nameChars)
		}
	}
	return nil
}

func nameByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	for i := 0; i < len(nameChars); i++ {
		if nameChars[i] == b {
			return true
		}
	}
	return false
}

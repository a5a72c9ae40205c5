package limiter

// Finding is one operating-system setting that weakens the defence against
// connection floods, as reported by Preflight.
type Finding struct {
	Setting string // e.g. "net.ipv4.tcp_syncookies" or "RLIMIT_NOFILE"
	Value   string // the value found
	Want    string // the value recommended
	Why     string // what the setting lets an attacker do
}

// String formats f as one log line.
func (f Finding) String() string {
	return f.Setting + " = " + f.Value + " (want " + f.Want + "): " + f.Why
}

// The thresholds Preflight applies.
const (
	PreflightMinSomaxconn = 4096
	PreflightMinNoFile    = 65536
)

// Preflight inspects the operating-system settings that decide how a server
// survives a connection flood and returns one Finding per weak setting; an
// empty result means nothing weak was found. On Linux it reads
// /proc/sys/net/ipv4/tcp_syncookies (SYN cookies off: a SYN flood fills the
// half-open queue), /proc/sys/net/core/somaxconn (a short accept backlog
// makes Backpressure shed early) and RLIMIT_NOFILE (each connection is a
// file descriptor). A setting it cannot read is skipped. On other systems it
// checks what it can (RLIMIT_NOFILE on Unix) and nothing elsewhere. It only
// reads; it never changes a setting.
func Preflight() []Finding {
	return preflight()
}

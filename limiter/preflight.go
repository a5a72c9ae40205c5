package limiter

import "strconv"

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

// The thresholds Preflight applies. The file-descriptor limit it wants is
// not fixed: it is the connection cap plus PreflightFDHeadroom (for the
// listener, log files, upstream connections and the connections being
// rejected at any instant).
const (
	PreflightMinSomaxconn  = 4096
	PreflightMinSynBacklog = 4096
	PreflightFDHeadroom    = 1024
)

// Preflight inspects the operating-system settings that decide how a server
// survives a connection flood, for a Listener with the default cap
// (DefaultMaxConns), and returns one Finding per weak setting; an empty
// result means nothing weak was found. Listener.Preflight checks against a
// listener's own cap and socket and is the one to use when you have one.
//
// On Linux it reads net.ipv4.tcp_syncookies (off: a SYN flood fills the
// half-open queue), net.ipv4.tcp_max_syn_backlog and net.core.somaxconn
// (short queues drop legitimate handshakes as soon as Accept falls behind)
// and RLIMIT_NOFILE (each connection is a file descriptor; below the cap,
// Accept fails for everyone before the Listener's limits are reached). A
// setting it cannot read is skipped. On other systems it checks what it
// can (RLIMIT_NOFILE on Unix). It only reads; it never changes a setting.
func Preflight() []Finding {
	return preflight(DefaultMaxConns)
}

// Preflight is the package Preflight for l: RLIMIT_NOFILE is compared with
// l's WithMaxConns plus PreflightFDHeadroom, and on Linux it also reports
// when TCP_DEFER_ACCEPT is not set on l's socket (WithDeferAccept), so that
// connections that never speak reach Accept. A nil l checks against
// DefaultMaxConns.
func (l *Listener) Preflight() []Finding {
	if l == nil {
		return Preflight()
	}
	fs := preflight(l.cfg.maxConns)
	if v, ok := deferAccept(l.inner); ok && v == 0 {
		fs = append(fs, Finding{
			Setting: "TCP_DEFER_ACCEPT",
			Value:   "0",
			Want:    ">= 1s (WithDeferAccept)",
			Why:     "connections that never send a byte reach Accept and hold a slot until the first-byte timeout",
		})
	}
	return fs
}

func noFileFindingFor(cur uint64, maxConns int) []Finding {
	want := uint64(maxConns) + PreflightFDHeadroom
	if cur >= want {
		return nil
	}
	return []Finding{{
		Setting: "RLIMIT_NOFILE",
		Value:   strconv.FormatUint(cur, 10),
		Want:    ">= " + strconv.FormatUint(want, 10) + " (the connection cap + " + strconv.Itoa(PreflightFDHeadroom) + ")",
		Why:     "every connection holds a file descriptor; at the limit Accept fails for everyone before the connection cap is reached",
	}}
}

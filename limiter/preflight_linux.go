package limiter

import (
	"os"
	"strconv"
	"strings"
)

func preflight(maxConns int) []Finding {
	var fs []Finding
	if v, ok := readProcInt("/proc/sys/net/ipv4/tcp_syncookies"); ok && v == 0 {
		fs = append(fs, Finding{
			Setting: "net.ipv4.tcp_syncookies",
			Value:   "0",
			Want:    "1",
			Why:     "without SYN cookies a SYN flood fills the half-open queue and legitimate handshakes are dropped",
		})
	}
	if v, ok := readProcInt("/proc/sys/net/ipv4/tcp_max_syn_backlog"); ok && v < PreflightMinSynBacklog {
		fs = append(fs, Finding{
			Setting: "net.ipv4.tcp_max_syn_backlog",
			Value:   strconv.FormatInt(v, 10),
			Want:    ">= " + strconv.Itoa(PreflightMinSynBacklog),
			Why:     "a short half-open queue drops handshakes (or falls back to SYN cookies, which lose TCP options) under a modest SYN burst",
		})
	}
	if v, ok := readProcInt("/proc/sys/net/core/somaxconn"); ok && v < PreflightMinSomaxconn {
		fs = append(fs, Finding{
			Setting: "net.core.somaxconn",
			Value:   strconv.FormatInt(v, 10),
			Want:    ">= " + strconv.Itoa(PreflightMinSomaxconn),
			Why:     "a short accept backlog drops connections as soon as Accept falls behind (Backpressure relies on it)",
		})
	}
	return append(fs, noFileFinding(maxConns)...)
}

func readProcInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

package limiter

import (
	"os"
	"strconv"
	"strings"
)

func preflight() []Finding {
	var fs []Finding
	if v, ok := readProcInt("/proc/sys/net/ipv4/tcp_syncookies"); ok && v == 0 {
		fs = append(fs, Finding{
			Setting: "net.ipv4.tcp_syncookies",
			Value:   "0",
			Want:    "1",
			Why:     "without SYN cookies a SYN flood fills the half-open queue and legitimate handshakes are dropped",
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
	return append(fs, noFileFinding()...)
}

func readProcInt(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

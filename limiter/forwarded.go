package limiter

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxForwardedHops bounds the X-Forwarded-For walk, so a header stuffed with
// thousands of entries costs a bounded amount of work.
const maxForwardedHops = 32

// ClientAddr returns the address of the client that sent r: the IP of
// r.RemoteAddr, unless that peer lies in one of trustedProxies. Only then is
// X-Forwarded-For read, from the right (the entries the trusted proxies
// appended), skipping trusted hops; the first untrusted address is the
// client. The leftmost entries are whatever the client wrote and are never
// used while an untrusted hop lies to their right.
//
// A malformed entry, an empty one, or more than 32 hops makes ClientAddr
// fall back to the RemoteAddr IP: a broken chain must not let the client
// choose its own key. If every hop is trusted, the leftmost one is returned.
// The result is unmapped (::ffff:1.2.3.4 becomes 1.2.3.4) and has no zone;
// it is the zero Addr when RemoteAddr holds no IP (a Unix socket, say).
// ClientAddr does not allocate.
func ClientAddr(r *http.Request, trustedProxies ...netip.Prefix) netip.Addr {
	remote := parseHop(r.RemoteAddr)
	if !remote.IsValid() || !trusted(remote, trustedProxies) {
		return remote
	}
	last, hops := remote, 0
	vals := r.Header.Values("X-Forwarded-For")
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for {
			elem := v
			j := strings.LastIndexByte(v, ',')
			if j >= 0 {
				elem, v = v[j+1:], v[:j]
			}
			if hops++; hops > maxForwardedHops {
				return remote
			}
			a := parseHop(strings.Trim(elem, " \t"))
			if !a.IsValid() {
				return remote
			}
			if !trusted(a, trustedProxies) {
				return a
			}
			last = a
			if j < 0 {
				break
			}
		}
	}
	return last
}

// parseHop parses "ip", "ip:port", "[ipv6]:port" or "[ipv6]", returning the
// unmapped, zoneless address or the zero Addr.
func parseHop(s string) netip.Addr {
	// Pick the parser by shape: a failed parse allocates its error, and
	// RemoteAddr always carries a port.
	var a netip.Addr
	var err error
	switch {
	case len(s) > 1 && s[0] == '[' && s[len(s)-1] == ']':
		a, err = netip.ParseAddr(s[1 : len(s)-1])
		if err == nil && !a.Is6() {
			return netip.Addr{}
		}
	case len(s) > 0 && s[0] == '[', strings.Count(s, ":") == 1:
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		a = ap.Addr()
	default:
		a, err = netip.ParseAddr(s)
	}
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func trusted(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maskAddr reduces a to the prefix that identifies one client: all of an
// IPv4 address, the first v6Bits of an IPv6 one.
func maskAddr(a netip.Addr, v6Bits int) netip.Addr {
	if !a.Is6() {
		return a
	}
	p, _ := a.Prefix(v6Bits)
	return p.Addr()
}

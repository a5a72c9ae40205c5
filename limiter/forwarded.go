package limiter

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// maxForwardedHops bounds the proxy-header walk, so a header stuffed with
// thousands of entries costs a bounded amount of work.
const maxForwardedHops = 32

// ProxyHeader names the request header in which trusted reverse proxies
// pass on the client's address.
type ProxyHeader uint8

const (
	// XForwardedFor reads X-Forwarded-For: a comma-separated list to which
	// each proxy appends the address it received the request from. The
	// default.
	XForwardedFor ProxyHeader = iota
	// Forwarded reads the "for" parameter of RFC 7239's Forwarded header
	// (for=192.0.2.7, for="[2001:db8::1]:4711"), one element per proxy.
	Forwarded
	// XRealIP reads X-Real-IP, in which the one proxy in front of the
	// server (nginx's realip module, say) writes the client address. It
	// holds one address, so only the peer needs to be trusted.
	XRealIP
)

// String returns the header's canonical name.
func (h ProxyHeader) String() string {
	switch h {
	case XForwardedFor:
		return "X-Forwarded-For"
	case Forwarded:
		return "Forwarded"
	case XRealIP:
		return "X-Real-Ip"
	}
	return "ProxyHeader(" + strconv.Itoa(int(h)) + ")"
}

// Proxies says which reverse proxies in front of a server are trusted to
// report the client's address, and in which header. Its zero value trusts
// nobody: the client is the connection's peer, which it cannot spoof.
//
// A hop is trusted when its address lies in Trusted, or it is one of the
// Hops nearest proxies (counting the connection's peer as the first), or it
// is the peer, has no IP address (a Unix socket) and TrustNonIP is set.
// ClientAddr walks the header from the right (the entries the trusted
// proxies appended) and returns the first untrusted hop.
type Proxies struct {
	// Trusted lists the networks of trusted proxies. IPv4-mapped prefixes
	// are unmapped by the middleware options; set them unmapped here.
	Trusted []netip.Prefix
	// Hops trusts the nearest Hops proxies whatever their addresses: for a
	// chain of cloud load balancers whose addresses are not known in
	// advance. Hops 1 means the peer is a proxy and the rightmost header
	// entry is the client.
	Hops int
	// TrustNonIP trusts a peer whose RemoteAddr holds no IP, as behind a
	// reverse proxy connecting over a Unix socket (RemoteAddr "@" or "").
	TrustNonIP bool
	// Header is where the proxies write the client address (default
	// XForwardedFor). Only this header is read: a proxy that sets one
	// header passes the others through from the client unchanged.
	Header ProxyHeader
}

// ClientAddr returns the address of the client that sent r: the IP of
// r.RemoteAddr, unless that peer lies in one of trustedProxies; then
// X-Forwarded-For is read as Proxies.ClientAddr describes. It does not
// allocate.
func ClientAddr(r *http.Request, trustedProxies ...netip.Prefix) netip.Addr {
	p := Proxies{Trusted: trustedProxies}
	return p.ClientAddr(r)
}

// ClientAddr returns the address of the client that sent r. Only when the
// connection's peer is trusted is p.Header read, from the right, skipping
// trusted hops; the first untrusted address is the client. The leftmost
// entries are whatever the client wrote and are never used while an
// untrusted hop lies to their right. If every hop is trusted, the leftmost
// one is returned.
//
// A malformed entry (not an IP, "unknown", an obfuscated RFC 7239
// identifier, an empty list element), more than 32 hops, a missing header,
// or a second X-Real-IP line makes ClientAddr fall back to the peer's
// address: a broken chain must not let the client choose its own key. The
// result is unmapped (::ffff:1.2.3.4 becomes 1.2.3.4) and has no zone; it
// is the zero Addr when the result is a peer with no IP. It does not
// allocate.
func (p *Proxies) ClientAddr(r *http.Request) netip.Addr {
	remote := parseHop(r.RemoteAddr)
	if !p.trusts(0, remote) {
		return remote
	}
	var hops [maxForwardedHops]string
	n, ok := p.collect(r.Header, &hops)
	if !ok || n == 0 {
		return remote
	}
	last := remote
	for i := n - 1; i >= 0; i-- {
		a := hops[i]
		var addr netip.Addr
		if p.Header == Forwarded {
			addr = parseForwardedElement(a)
		} else {
			addr = parseHop(strings.Trim(a, " \t"))
		}
		if !addr.IsValid() {
			return remote
		}
		if !p.trusts(n-i, addr) {
			return addr
		}
		last = addr
	}
	return last
}

// trusts reports whether hop number i (0 is the peer) at address a is a
// trusted proxy.
func (p *Proxies) trusts(i int, a netip.Addr) bool {
	if !a.IsValid() {
		return i == 0 && p.TrustNonIP
	}
	return i < p.Hops || trusted(a, p.Trusted)
}

// collect splits the header's values into list elements, left to right,
// into hops. It reports false for more than maxForwardedHops elements or an
// X-Real-IP that is not a single value.
func (p *Proxies) collect(h http.Header, hops *[maxForwardedHops]string) (int, bool) {
	var vals []string
	switch p.Header {
	case Forwarded:
		vals = h["Forwarded"]
	case XRealIP:
		vals = h["X-Real-Ip"]
		if len(vals) != 1 || strings.IndexByte(vals[0], ',') >= 0 {
			return 0, len(vals) == 0
		}
		hops[0] = vals[0]
		return 1, true
	default:
		vals = h["X-Forwarded-For"]
	}
	n := 0
	for _, v := range vals {
		for {
			end := listElementEnd(v, p.Header == Forwarded)
			if n == maxForwardedHops {
				return 0, false
			}
			hops[n] = v[:end]
			n++
			if end == len(v) {
				break
			}
			v = v[end+1:]
		}
	}
	return n, true
}

// listElementEnd returns the index of the comma that ends the first list
// element of v, or len(v). With quotes set, commas inside a quoted string
// (RFC 9110 quoted-string, with backslash escapes) do not count.
func listElementEnd(v string, quotes bool) int {
	if !quotes {
		if i := strings.IndexByte(v, ','); i >= 0 {
			return i
		}
		return len(v)
	}
	inQuote := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			return i
		}
	}
	return len(v)
}

// parseForwardedElement returns the address in the one "for" parameter of
// an RFC 7239 forwarded-element such as `for="[2001:db8::1]:80";proto=https`,
// or the zero Addr if there is none, more than one, or it is not an IP.
func parseForwardedElement(e string) netip.Addr {
	var found netip.Addr
	seen := false
	for len(e) > 0 {
		end := pairEnd(e)
		pair := strings.Trim(e[:end], " \t")
		if end < len(e) {
			e = e[end+1:]
		} else {
			e = ""
		}
		eq := strings.IndexByte(pair, '=')
		if eq < 0 {
			if pair == "" {
				continue
			}
			return netip.Addr{}
		}
		if !strings.EqualFold(pair[:eq], "for") {
			continue
		}
		if seen {
			return netip.Addr{}
		}
		seen = true
		v := pair[eq+1:]
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
			if strings.IndexByte(v, '\\') >= 0 || strings.IndexByte(v, '"') >= 0 {
				return netip.Addr{} // an IP never needs escaping
			}
		} else if strings.IndexByte(v, '"') >= 0 {
			return netip.Addr{}
		}
		found = parseHop(v)
		if !found.IsValid() {
			return netip.Addr{}
		}
	}
	return found
}

// pairEnd returns the index of the ';' that ends the first parameter of a
// forwarded-element, skipping quoted strings, or len(e).
func pairEnd(e string) int {
	inQuote := false
	for i := 0; i < len(e); i++ {
		switch c := e[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ';' && !inQuote:
			return i
		}
	}
	return len(e)
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

// normalizePrefix unmaps an IPv4-mapped prefix, so that it matches the
// unmapped addresses ClientAddr compares, and masks it.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
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

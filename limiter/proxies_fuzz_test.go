package limiter

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// splitQuoted is the model's list splitter: it builds each element rune by
// rune, so it shares no code with listElementEnd and pairEnd.
func splitQuoted(s string, sep byte) []string {
	var out []string
	var cur strings.Builder
	inQuote, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

// modelForwardedFor is the reference parse of one RFC 7239 element.
func modelForwardedFor(elem string) netip.Addr {
	var fors []string
	for _, pair := range splitQuoted(elem, ';') {
		pair = strings.Trim(pair, " \t")
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return netip.Addr{}
		}
		if strings.ToLower(name) == "for" {
			fors = append(fors, value)
		}
	}
	if len(fors) != 1 {
		return netip.Addr{}
	}
	v := fors[0]
	if len(v) >= 2 && strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) {
		v = v[1 : len(v)-1]
		if strings.ContainsAny(v, `\"`) {
			return netip.Addr{}
		}
	} else if strings.Contains(v, `"`) {
		return netip.Addr{}
	}
	return parseHop(v)
}

// modelClientAddr is the reference ClientAddr: plain slices, no bounds
// tricks, the trust rule written out.
func modelClientAddr(p Proxies, remote string, vals []string) netip.Addr {
	peer := parseHop(remote)
	trustedAt := func(i int, a netip.Addr) bool {
		if !a.IsValid() {
			return i == 0 && p.TrustNonIP
		}
		if i < p.Hops {
			return true
		}
		for _, pr := range p.Trusted {
			if pr.Contains(a) {
				return true
			}
		}
		return false
	}
	if !trustedAt(0, peer) {
		return peer
	}
	var entries []string
	switch p.Header {
	case XRealIP:
		if len(vals) != 1 || strings.Contains(vals[0], ",") {
			return peer
		}
		entries = vals
	case Forwarded:
		for _, v := range vals {
			entries = append(entries, splitQuoted(v, ',')...)
		}
	default:
		for _, v := range vals {
			entries = append(entries, strings.Split(v, ",")...)
		}
	}
	if len(entries) == 0 || len(entries) > maxForwardedHops {
		return peer
	}
	last := peer
	for i := len(entries) - 1; i >= 0; i-- {
		var a netip.Addr
		if p.Header == Forwarded {
			a = modelForwardedFor(entries[i])
		} else {
			a = parseHop(strings.Trim(entries[i], " \t"))
		}
		if !a.IsValid() {
			return peer
		}
		if !trustedAt(len(entries)-i, a) {
			return a
		}
		last = a
	}
	return last
}

// FuzzClientAddr checks Proxies.ClientAddr against the model for every
// header kind, hop count and peer kind: the client can never choose its key
// unless the chain to its right is trusted and well formed.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.1, 10.0.0.2", "", uint8(0), uint8(0), false)
	f.Add("10.0.0.1:80", `for="[2001:db8::1]:1";proto=https, for=10.0.0.9`, "for=1.2.3.4", uint8(1), uint8(0), false)
	f.Add("@", "198.51.100.7", "", uint8(2), uint8(0), true)
	f.Add("203.0.113.1:1", "6.6.6.6, 198.51.100.7, 203.0.113.2", "", uint8(0), uint8(2), false)
	f.Add("10.0.0.1:1", `for=1.1.1.1;by="a,b;c", For="[::1]"`, `for=unknown`, uint8(1), uint8(1), false)
	f.Add("", "garbage,", "", uint8(0), uint8(3), true)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	names := [3]string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"}
	f.Fuzz(func(t *testing.T, remote, h1, h2 string, header, hops uint8, nonIP bool) {
		p := Proxies{Trusted: trusted, Hops: int(hops % 4), TrustNonIP: nonIP, Header: ProxyHeader(header % 3)}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		vals := []string{h1}
		if h2 != "" {
			vals = append(vals, h2)
		}
		r.Header[names[p.Header]] = vals
		// The other headers carry attacker data and must never be read.
		for i, n := range names {
			if ProxyHeader(i) != p.Header {
				r.Header[n] = []string{"203.0.113.66"}
			}
		}
		got := p.ClientAddr(r)
		require.Equal(t, modelClientAddr(p, remote, vals), got)
		if got.IsValid() {
			require.Equal(t, got, got.Unmap().WithZone(""))
		}
	})
}

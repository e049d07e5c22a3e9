// Package clientip finds the address of the client behind an HTTP request:
// the connection's peer, or, when that peer is a trusted reverse proxy, the
// address the proxies recorded in X-Forwarded-For (or X-Real-IP).
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which proxies to believe. The zero value trusts none: the
// forwarding headers, which any client can send, are ignored.
type Resolver struct {
	trusted []netip.Prefix
}

// Parse returns a Resolver trusting the comma-separated IPs and CIDR
// prefixes in list (for example "127.0.0.1,10.0.0.0/8,::1").
func Parse(list string) (Resolver, error) {
	var r Resolver
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			r.trusted = append(r.trusted, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return Resolver{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", f)
		}
		a = a.Unmap()
		r.trusted = append(r.trusted, netip.PrefixFrom(a, a.BitLen()))
	}
	return r, nil
}

// Trusts reports whether a is a trusted proxy.
func (r Resolver) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr returns the client's address for req: req.RemoteAddr unless it is a
// trusted proxy; then the right-most address of X-Forwarded-For that is not
// a trusted proxy (each proxy appends the address it saw, so entries left
// of it could be forged by the client), else X-Real-IP. A malformed header
// from a trusted proxy leaves the proxy's address.
func (r Resolver) Addr(req *http.Request) string {
	remote := req.RemoteAddr
	if len(r.trusted) == 0 {
		return remote
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !r.Trusts(peer) {
		return remote
	}
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			return remote
		}
		if !r.Trusts(a) {
			return a.Unmap().String()
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(req.Header.Get("X-Real-IP"))); err == nil {
		return a.Unmap().String()
	}
	return remote
}

// Key returns the per-address accounting key of addr (an IP or "host:port",
// as Addr returns): the IP, or its /64 prefix for IPv6, since one
// subscriber usually holds a whole /64.
func Key(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
}

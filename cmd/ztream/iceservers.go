package main

import (
	"fmt"
	"strings"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/hub"
)

// parseICEServers turns the URLs of --ice-servers into ICE servers, one per
// URL. A TURN URL may carry static credentials as turn:USER:PASS@host:port
// (taken out of the URL, which browsers and Pion refuse otherwise); without
// them it needs --turn-secret (withSecret), or every peer connection that
// lists it would fail.
func parseICEServers(urls []string, withSecret bool) ([]webrtc.ICEServer, error) {
	var out []webrtc.ICEServer
	for _, raw := range urls {
		scheme, rest, ok := strings.Cut(raw, ":")
		switch strings.ToLower(scheme) {
		case "stun", "stuns", "turn", "turns":
		default:
			ok = false
		}
		if !ok || rest == "" {
			return nil, fmt.Errorf("--ice-servers: %q: want stun:, stuns:, turn: or turns: URLs", raw)
		}
		s := webrtc.ICEServer{URLs: []string{raw}}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if !hub.IsTURNURL(raw) {
				return nil, fmt.Errorf("--ice-servers: %q: credentials only go with turn: and turns: URLs", raw)
			}
			user, pass, ok := strings.Cut(rest[:at], ":")
			if !ok || user == "" || pass == "" {
				return nil, fmt.Errorf("--ice-servers: %q: credentials must be USER:PASS@", raw)
			}
			s = webrtc.ICEServer{URLs: []string{scheme + ":" + rest[at+1:]}, Username: user, Credential: pass}
		} else if hub.IsTURNURL(raw) && !withSecret {
			return nil, fmt.Errorf("--ice-servers: %q: a TURN server needs credentials: turn:USER:PASS@host:port, or --turn-secret", raw)
		}
		if _, err := stun.ParseURI(s.URLs[0]); err != nil {
			return nil, fmt.Errorf("--ice-servers: %q: %w", raw, err)
		}
		out = append(out, s)
	}
	return out, nil
}

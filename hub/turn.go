package hub

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // G505: coturn's use-auth-secret scheme is HMAC-SHA1 by definition
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// IsTURNURL reports whether url is a TURN server URL (turn: or turns:).
func IsTURNURL(url string) bool {
	u := strings.ToLower(url)
	return strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:")
}

// turnCredential is coturn's "TURN REST API" credential (use-auth-secret):
// the username is "expiry:peer", with expiry in Unix seconds, and the
// password is base64(HMAC-SHA1(secret, username)). The TURN server checks
// both with the shared secret, without asking the hub.
func turnCredential(secret, peer string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + peer
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// iceServersFor returns the STUN/TURN servers handed to peer: those of the
// configuration, with credentials valid for TURNCredentialTTL from now on
// every TURN server without static ones when TURNSecret is set.
func (h *Hub) iceServersFor(peer string, now time.Time) []webrtc.ICEServer {
	if len(h.cfg.ICEServers) == 0 {
		return nil
	}
	out := make([]webrtc.ICEServer, len(h.cfg.ICEServers))
	copy(out, h.cfg.ICEServers)
	if h.cfg.TURNSecret == "" {
		return out
	}
	for i, s := range out {
		if s.Username != "" || !anyTURN(s.URLs) {
			continue
		}
		out[i].Username, out[i].Credential = turnCredential(h.cfg.TURNSecret, peer, now.Add(h.cfg.TURNCredentialTTL))
		out[i].URLs = append([]string(nil), s.URLs...)
	}
	return out
}

// anyTURN reports whether one of urls is a TURN URL.
func anyTURN(urls []string) bool {
	for _, u := range urls {
		if IsTURNURL(u) {
			return true
		}
	}
	return false
}

// usesTURNSecret reports whether the hub hands out time-limited TURN
// credentials (and must renew them).
func (h *Hub) usesTURNSecret() bool {
	if h.cfg.TURNSecret == "" {
		return false
	}
	for _, s := range h.cfg.ICEServers {
		if s.Username == "" && anyTURN(s.URLs) {
			return true
		}
	}
	return false
}

package hub_test

import (
	"testing"
	"time"

	"github.com/ztream/ztream/hub"
)

// TestTURNCredentials: the use-auth-secret credential of coturn's TURN REST
// API: "expiry:peer" and base64(HMAC-SHA1(secret, username)).
func TestTURNCredentials(t *testing.T) {
	// printf '%s' '1700000000:p-1' | openssl dgst -sha1 -hmac secret -binary | base64
	const want = "EGknUEC9fQfON4epF5GrUbmOogI="
	user, pass := hub.TURNCredential("secret", "p-1", time.Unix(1700000000, 0))
	if user != "1700000000:p-1" || pass != want {
		t.Errorf("got %q / %q, want 1700000000:p-1 / %s", user, pass, want)
	}
}

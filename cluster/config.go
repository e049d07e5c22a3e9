package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config is how a hub joins a cluster. Zero fields take the defaults shown.
type Config struct {
	// URLs lists the NATS servers, comma-separated ("nats://host:4222,...").
	URLs string
	// HubID names this hub in the cluster, in logs, metrics and /healthz:
	// 1..64 of [A-Za-z0-9_-]. Two live hubs must not share one.
	HubID string
	// CredsFile is a NATS credentials file (JWT and NKey seed), NKeyFile an
	// NKey seed file; User/Password and Token are the other NATS
	// authentications. At most one kind may be set.
	CredsFile string
	NKeyFile  string
	User      string
	Password  string
	Token     string
	// TLS, when set, is the client TLS configuration (CA, client
	// certificate); a tls:// URL also turns TLS on.
	TLS *tls.Config
	// Replicas is how many NATS servers keep the cluster's key-value
	// buckets (0: 3 when the server is part of a NATS cluster, else 1).
	Replicas int
	// Heartbeat is how often the hub says it is alive (1 s).
	Heartbeat time.Duration
	// HubTimeout is how long without a heartbeat makes a hub dead, its
	// peers forgotten and its pairs ended (6 s).
	HubTimeout time.Duration
	// RequestTimeout bounds a pairing request to another hub (1 s).
	RequestTimeout time.Duration
	// AskTimeout bounds a can_upload ask relayed to another hub (1.5 s: the
	// tracker's lookup timeout).
	AskTimeout time.Duration
	// MaxRemotePeers bounds the peers of other hubs this hub keeps
	// (100,000); entries beyond it are ignored.
	MaxRemotePeers int
	// MaxPendingAsks bounds the asks this hub has in flight to other hubs
	// (1,024); beyond it an ask counts as a no.
	MaxPendingAsks int
	// HoldersMaxAge is how long a holding lives in the bucket unless its hub
	// puts it again (1 h); hubs put theirs again every half of it, so that
	// the holdings of a hub that died and never came back go away.
	HoldersMaxAge time.Duration
	// Logger receives the cluster's log lines (slog.Default()); the hub's
	// logger names the hub already.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.HubTimeout <= 0 {
		c.HubTimeout = 6 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = time.Second
	}
	if c.AskTimeout <= 0 {
		c.AskTimeout = 1500 * time.Millisecond
	}
	if c.MaxRemotePeers <= 0 {
		c.MaxRemotePeers = 100_000
	}
	if c.MaxPendingAsks <= 0 {
		c.MaxPendingAsks = 1024
	}
	if c.HoldersMaxAge <= 0 {
		c.HoldersMaxAge = time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if strings.TrimSpace(c.URLs) == "" {
		return errors.New("cluster: no NATS server URL")
	}
	if !ValidHubID(c.HubID) {
		return fmt.Errorf("cluster: hub id %q: want 1..64 of A-Z a-z 0-9 _ -", c.HubID)
	}
	kinds := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeyFile != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return errors.New("cluster: set one NATS authentication: credentials file, nkey seed, user/password or token")
	}
	if c.HubTimeout <= 2*c.Heartbeat {
		return fmt.Errorf("cluster: hub timeout %v must exceed two heartbeats (%v)", c.HubTimeout, c.Heartbeat)
	}
	return nil
}

var hubIDSyntax = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidHubID reports whether id can name a hub.
func ValidHubID(id string) bool { return hubIDSyntax.MatchString(id) }

// DefaultHubID derives a hub id from the machine's host name and the port of
// listen address addr ("host:port"): "host-port", with any character a hub
// id cannot hold replaced by '_'.
func DefaultHubID(addr string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hub"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		port = "0"
	}
	id := []byte(host + "-" + port)
	for i, b := range id {
		if !hubIDSyntax.Match([]byte{b}) {
			id[i] = '_'
		}
	}
	if len(id) > 64 {
		id = id[len(id)-64:]
	}
	return string(id)
}

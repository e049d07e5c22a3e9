package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/ztream/ztream/cluster"
)

// clusterFlags configure the hub's membership in a cluster of hubs (NATS).
type clusterFlags struct {
	urls     string
	hubID    string
	creds    string
	nkey     string
	user     string
	password string
	token    string
	ca       string
	cert     string
	key      string
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.urls, "nats", envOr("ZTREAM_NATS_URL", ""),
		"comma-separated NATS server URLs (nats://host:4222, tls://...): join the hubs of one swarm through NATS JetStream; empty = this hub alone (env ZTREAM_NATS_URL)")
	fs.StringVar(&c.hubID, "hub-id", envOr("ZTREAM_HUB_ID", ""),
		"this hub's id in the cluster, logs, metrics and /healthz: 1..64 of A-Z a-z 0-9 _ - (default: host name and port of --addr) (env ZTREAM_HUB_ID)")
	fs.StringVar(&c.creds, "nats-creds", envOr("ZTREAM_NATS_CREDS", ""), "NATS credentials file (JWT and NKey seed) (env ZTREAM_NATS_CREDS)")
	fs.StringVar(&c.nkey, "nats-nkey", envOr("ZTREAM_NATS_NKEY", ""), "NATS NKey seed file (env ZTREAM_NATS_NKEY)")
	fs.StringVar(&c.user, "nats-user", envOr("ZTREAM_NATS_USER", ""), "NATS user name (env ZTREAM_NATS_USER)")
	fs.StringVar(&c.password, "nats-password", envOr("ZTREAM_NATS_PASSWORD", ""), "NATS password of --nats-user (env ZTREAM_NATS_PASSWORD)")
	fs.StringVar(&c.token, "nats-token", envOr("ZTREAM_NATS_TOKEN", ""), "NATS authentication token (env ZTREAM_NATS_TOKEN)")
	fs.StringVar(&c.ca, "nats-ca", envOr("ZTREAM_NATS_CA", ""), "PEM CA file to verify the NATS servers with; turns TLS on (env ZTREAM_NATS_CA)")
	fs.StringVar(&c.cert, "nats-cert", envOr("ZTREAM_NATS_CERT", ""), "PEM client certificate for NATS (with --nats-key); turns TLS on (env ZTREAM_NATS_CERT)")
	fs.StringVar(&c.key, "nats-key", envOr("ZTREAM_NATS_KEY", ""), "PEM private key of --nats-cert (env ZTREAM_NATS_KEY)")
}

// id returns the hub id: --hub-id, or one derived from the host and addr.
func (c *clusterFlags) id(addr string) (string, error) {
	if c.hubID == "" {
		return cluster.DefaultHubID(addr), nil
	}
	if !cluster.ValidHubID(c.hubID) {
		return "", fmt.Errorf("--hub-id %q: want 1..64 of A-Z a-z 0-9 _ -", c.hubID)
	}
	return c.hubID, nil
}

// open returns the cluster membership (nil without --nats), not started.
func (c *clusterFlags) open(hubID string, logger *slog.Logger) (*cluster.Cluster, error) {
	if c.urls == "" {
		for _, f := range []string{c.creds, c.nkey, c.user, c.password, c.token, c.ca, c.cert, c.key} {
			if f != "" {
				return nil, errors.New("the --nats-* options need --nats")
			}
		}
		return nil, nil
	}
	cfg := cluster.Config{
		URLs: c.urls, HubID: hubID, CredsFile: c.creds, NKeyFile: c.nkey,
		User: c.user, Password: c.password, Token: c.token, Logger: logger,
	}
	if c.ca != "" || c.cert != "" || c.key != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.ca != "" {
			pem, err := os.ReadFile(c.ca)
			if err != nil {
				return nil, fmt.Errorf("--nats-ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--nats-ca %s: no PEM certificate in it", c.ca)
			}
		}
		if (c.cert == "") != (c.key == "") {
			return nil, errors.New("--nats-cert and --nats-key go together")
		}
		if c.cert != "" {
			pair, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				return nil, fmt.Errorf("--nats-cert/--nats-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.TLS = tc
	}
	cl, err := cluster.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("--nats: %w", err)
	}
	return cl, nil
}

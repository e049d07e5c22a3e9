package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztream/ztream/peer"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// under dir and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ztream test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: with --tls-cert and --tls-key the hub serves HTTPS and WSS
// on --addr (a Go peer joins and plays over them), --redirect-http sends
// plain HTTP there, and --metrics-addr takes /metrics off the public
// listener.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	addr, plain, ops := freeAddr(t), freeAddr(t), freeAddr(t)
	stderr := startServe(t, "--addr", addr, "--data", t.TempDir(), "--udp-port", "0", "--ice-ips", "127.0.0.1",
		"--tls-cert", certFile, "--tls-key", keyFile, "--redirect-http", plain, "--metrics-addr", ops)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + addr
	waitServing(t, stderr, func() error {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s/healthz: %d", base, resp.StatusCode)
		}
		return nil
	})
	if !strings.Contains(stderr.String(), "url=https://"+addr) {
		t.Errorf("serve does not log the https URL to open:\n%s", stderr.String())
	}
	status := func(c *http.Client, url string) int {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(client, base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404 with --metrics-addr", code)
	}
	if code := status(http.DefaultClient, "http://"+ops+"/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics on --metrics-addr: %d", code)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + plain + "/api/tracks?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(addr)
	if want := "https://127.0.0.1:" + port + "/api/tracks?x=1"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("--redirect-http: %d to %q, want 301 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// A peer over HTTPS and WSS, trusting the certificate, plays a demo track.
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	p, err := peer.Dial(pctx, peer.Config{HubURL: base, HTTPClient: client, ICELoopback: true, Speed: 50, StatsInterval: -1})
	if err != nil {
		t.Fatalf("peer over wss: %v", err)
	}
	defer p.Close()
	resp, err = client.Get(base + "/api/tracks")
	if err != nil {
		t.Fatal(err)
	}
	var tracks []struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tracks)
	resp.Body.Close()
	if err != nil || len(tracks) == 0 {
		t.Fatalf("tracks over https: %v (%d)", err, len(tracks))
	}
	res, err := p.Play(pctx, tracks[0].ID)
	if err != nil || !res.Complete {
		t.Fatalf("play over wss: %v %+v", err, res)
	}
}

// TestServeTLSBadFiles: missing or mismatched files, and half a TLS
// configuration, fail at start with an error naming the flag.
func TestServeTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	_, otherKey, _ := selfSigned(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "--tls-cert needs --tls-key"},
		{[]string{"--tls-key", keyFile}, "--tls-key needs --tls-cert"},
		{[]string{"--redirect-http", "127.0.0.1:0"}, "--redirect-http needs"},
		{[]string{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", keyFile}, "--tls-cert"},
		{[]string{"--tls-cert", certFile, "--tls-key", filepath.Join(dir, "missing.pem")}, "--tls-key"},
		{[]string{"--tls-cert", certFile, "--tls-key", otherKey}, "private key does not match public key"},
		{[]string{"--tls-cert", keyFile, "--tls-key", keyFile}, "--tls-cert"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--udp-port", "0"}, tc.args...)
		code, _, errOut := runCmd(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}

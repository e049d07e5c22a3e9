package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// tlsFlags configure HTTPS (and WSS) on the main listener.
type tlsFlags struct {
	cert, key    string
	redirectHTTP string
}

// enabled reports whether TLS is configured.
func (f tlsFlags) enabled() bool { return f.cert != "" || f.key != "" }

// check refuses half a configuration and unreadable or mismatched files,
// naming the flag.
func (f tlsFlags) check() error {
	switch {
	case f.cert != "" && f.key == "":
		return errors.New("--tls-cert needs --tls-key")
	case f.key != "" && f.cert == "":
		return errors.New("--tls-key needs --tls-cert")
	case f.redirectHTTP != "" && !f.enabled():
		return errors.New("--redirect-http needs --tls-cert and --tls-key")
	}
	if !f.enabled() {
		return nil
	}
	for flag, file := range map[string]string{"--tls-cert": f.cert, "--tls-key": f.key} {
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(f.cert, f.key); err != nil {
		return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", f.cert, f.key, err)
	}
	return nil
}

// certCheckEvery is how often a TLS handshake may look for renewed
// certificate files.
const certCheckEvery = 30 * time.Second

// certReloader serves a key pair from files and reloads it when the files
// change (a renewed certificate is picked up without a restart). A renewal
// that does not load keeps the previous pair.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	mod     time.Time // newest modification time of the two files loaded
	checked time.Time
	onError func(error)
}

func newCertReloader(certFile, keyFile string, onError func(error)) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, onError: onError}
	if err := r.load(time.Now()); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the pair if the files changed since the last load.
func (r *certReloader) load(now time.Time) error {
	r.checked = now
	var mod time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if st.ModTime().After(mod) {
			mod = st.ModTime()
		}
	}
	if r.cert != nil && !mod.After(r.mod) {
		return nil
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	r.cert, r.mod = &c, mod
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		if err := r.load(now); err != nil && r.onError != nil {
			r.onError(err)
		}
	}
	return r.cert, nil
}

// redirectToHTTPS answers every request with a permanent redirect to the
// same path on https, at the host the client asked for and the port of the
// TLS listener.
func redirectToHTTPS(tlsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "missing Host", http.StatusBadRequest)
			return
		}
		target := "https://" + net.JoinHostPort(host, tlsPort)
		if tlsPort == "443" {
			target = "https://" + host
			if net.ParseIP(host) != nil && net.ParseIP(host).To4() == nil {
				target = "https://[" + host + "]"
			}
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
}

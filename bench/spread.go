package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// maxProxyConns bounds the connections the proxy holds open at once.
const maxProxyConns = 4096

// spreadProxy forwards TCP connections to a hub, each from the next source
// address in 127.0.0.2–127.0.0.254 (all of 127.0.0.0/8 is local on Linux).
// The hub limits WebSockets per client address (hub.Config.MaxPeersPerIP,
// 32 by default); when `ztream serve` has no flag to raise that limit, this
// lets a single-machine benchmark connect hundreds of peers. Only the
// WebSocket and HTTP traffic goes through it: WebRTC goes straight over UDP.
type spreadProxy struct {
	ln     net.Listener
	target string
	next   atomic.Uint32
	sem    chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startSpreadProxy listens on a free loopback port and forwards to target
// (host:port).
func startSpreadProxy(target string) (*spreadProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("spread proxy: %w", err)
	}
	p := &spreadProxy{ln: ln, target: target, sem: make(chan struct{}, maxProxyConns), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// url is the proxy's base URL.
func (p *spreadProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *spreadProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case p.sem <- struct{}{}:
		default:
			c.Close() // over the bound: refuse
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.sem }()
			p.forward(c)
		}()
	}
}

// forward dials the target from the next source address and copies both
// ways until either side ends.
func (p *spreadProxy) forward(c net.Conn) {
	n := p.next.Add(1)
	src := net.IPv4(127, 0, 0, byte(2+n%253))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
	up, err := d.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	defer p.untrack(c, up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
}

// track registers an open pair; false (and both closed) once the proxy is
// closing.
func (p *spreadProxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		a.Close()
		b.Close()
		return false
	}
	p.conns[a], p.conns[b] = struct{}{}, struct{}{}
	return true
}

func (p *spreadProxy) untrack(a, b net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns != nil {
		delete(p.conns, a)
		delete(p.conns, b)
	}
}

// close stops accepting, closes every open connection and waits.
func (p *spreadProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

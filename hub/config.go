package hub

import (
	"log/slog"
	"net"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/cluster"
	"github.com/ztream/ztream/internal/clientip"
	"github.com/ztream/ztream/signaling"
)

// Config configures a Hub. Zero fields take the defaults in DefaultConfig,
// except UDPPort, where 0 means "no UDP mux".
type Config struct {
	// UDPPort is the single UDP port every hub PeerConnection shares
	// (ice.NewMultiUDPMuxFromPort). 0 = no mux: each PeerConnection gathers
	// on its own ephemeral sockets (tests, or a port range below).
	UDPPort int
	// UDPBufferBytes sizes the mux socket buffers (default 8 MiB).
	UDPBufferBytes int
	// TCPPort, when not 0, also accepts ICE over TCP on this port (one
	// listener for every PeerConnection, webrtc.NewICETCPMux): a listener
	// whose network blocks UDP still gets the hub DataChannel. -1 picks a
	// free port (tests; see TCPAddr).
	TCPPort int
	// PublicIPs replace the host candidates' addresses (1:1 NAT, Docker).
	PublicIPs []string
	// IncludeLoopback gathers loopback candidates (tests on 127.0.0.1).
	IncludeLoopback bool
	// IPFilter, if set, keeps only the local addresses it accepts.
	IPFilter func(net.IP) bool
	// Net, when set, is the network the hub's PeerConnections use instead
	// of the host's (tests: a pion/transport vnet with NATs). It excludes
	// UDPPort and TCPPort, which bind host sockets.
	Net transport.Net
	// ICELite makes the hub an ICE-lite agent: host candidates only (its
	// own addresses, or PublicIPs), it answers the checks its peers send and
	// sends none. Faster DataChannel setup with Chromium, but in 500-peer
	// runs on one 2-core machine it lost offload (docs/PROTOCOL.md §3); off
	// by default.
	ICELite bool
	// ICEServers are handed to peers in welcome, for peer↔peer connections.
	ICEServers []webrtc.ICEServer
	// TURNSecret, when set, is the secret shared with the TURN servers of
	// ICEServers (coturn --use-auth-secret --static-auth-secret): each
	// peer gets its own credentials for those without static ones, valid
	// for TURNCredentialTTL (default 12 h) and renewed at half of it.
	TURNSecret        string
	TURNCredentialTTL time.Duration
	// PeerICETransportPolicy is signaling.ICETransportPolicyRelay to make
	// every peer↔peer connection use a TURN relay (listeners never learn
	// each other's addresses); empty: any candidate.
	PeerICETransportPolicy string
	// Cluster, when set, joins this hub to the other hubs of one swarm
	// (package cluster): the hub starts it in New and closes it in Close.
	// Nil: the hub is alone.
	Cluster *cluster.Cluster
	// OriginPatterns are the allowed Origin host patterns of the WebSocket
	// (websocket.AcceptOptions); empty allows only same-origin requests.
	OriginPatterns []string

	// MaxPeers bounds connected peers (default 1000). Open WebSockets,
	// counting those still before hello, are bounded by 2 × MaxPeers.
	MaxPeers int
	// MaxPeersPerIP bounds the open WebSockets of one client address (an
	// IPv6 client counts by its /64) (default 32; negative = no limit).
	// Behind a reverse proxy every peer has the proxy's address: raise it.
	MaxPeersPerIP int
	// ClientIP finds a connection's client address (per-address limits,
	// logs); the zero value takes the TCP peer, ignoring forwarding
	// headers. Behind a reverse proxy, trust it (clientip.Parse).
	ClientIP clientip.Resolver
	// MessageRate is the sustained rate of WebSocket messages (per second)
	// one connection may send after hello (default 50); MessageBurst is the
	// burst it may send at once (default 200). Extra messages are refused
	// with rate_limited; a connection refused more than MessageBurst/4
	// times in a burst (refilled at 1 per second) is closed (1008).
	MessageRate  float64
	MessageBurst int
	// DataChannelRate is the sustained rate of messages (per second) a peer
	// may send on its hub DataChannel (default 100); DataChannelBurst the
	// burst (default 200). Extra messages get error rate_limited and are
	// dropped; a peer refused more than DataChannelBurst/4 times in a burst
	// (refilled at 1 per second) is disconnected (1008).
	DataChannelRate  float64
	DataChannelBurst int
	// PingInterval is how often the hub checks a connection's liveness: one
	// quiet for half of it gets a ping (default 15 s).
	PingInterval time.Duration
	// IdleTimeout closes a connection (1008) that sent no WebSocket and no
	// DataChannel message for that long (default 30 s).
	IdleTimeout time.Duration
	// StoreTimeout bounds one store lookup of a manifest (default 5 s).
	StoreTimeout time.Duration
	// UploadCap is the default upload cap of a peer (default 4).
	UploadCap int
	// MaxPairs bounds the pairs one peer is part of (default 32).
	MaxPairs int
	// LookupTimeout ends a lookup with no yes (default 1.5 s).
	LookupTimeout time.Duration
	// HoldersPerTrack is how many holders, complete or partial, the tracker
	// keeps per track (default 32; the least useful is forgotten first).
	HoldersPerTrack int
	// MaxPartialTracks bounds the tracks one peer is listed for as partial
	// holder through holding messages (default 8).
	MaxPartialTracks int
	// FirstCopyTTL is how long a chunk the hub sent to a connected peer
	// counts as a first copy: first-copy requests of other peers skip it
	// meanwhile (default 20 s).
	FirstCopyTTL time.Duration
	// FirstCopyStripe is the most chunks one first-copy request gets
	// (default 8): concurrent leechers of a cold track get disjoint stripes.
	FirstCopyStripe int
	// SendWindow is the DataChannel bufferedAmount above which the hub
	// waits before sending the next chunk (default 128 KiB, 8 s of
	// 128 kbit/s audio): a chunk asked in an emergency queues behind at
	// most this much, and a peer that cannot keep up holds no more.
	SendWindow int
	// MaxRequests bounds the ranges a peer may have in flight (default 4).
	MaxRequests int
	// SendQueue bounds the WebSocket messages queued for one peer; a peer
	// that lets it fill is disconnected (default 128).
	SendQueue int
	// HelloTimeout is how long a new connection has to send hello (10 s).
	HelloTimeout time.Duration
	// ConnectTimeout is how long the hub PeerConnection has to connect (20 s).
	ConnectTimeout time.Duration
	// WriteTimeout bounds one WebSocket write (10 s).
	WriteTimeout time.Duration

	// Logger receives the hub's logs (default slog.Default()).
	Logger *slog.Logger
	// Metrics receives the hub's events (default: no-op).
	Metrics Metrics
}

// DefaultConfig returns the configuration used by `ztream serve`.
func DefaultConfig() Config {
	return Config{UDPPort: 8443}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.UDPBufferBytes <= 0 {
		c.UDPBufferBytes = 8 << 20
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 1000
	}
	if c.MaxPeersPerIP == 0 {
		c.MaxPeersPerIP = 32
	}
	if c.MessageRate <= 0 {
		c.MessageRate = 50
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = 200
	}
	if c.DataChannelRate <= 0 {
		c.DataChannelRate = 100
	}
	if c.DataChannelBurst <= 0 {
		c.DataChannelBurst = 200
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * c.PingInterval
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 5 * time.Second
	}
	if c.UploadCap <= 0 {
		c.UploadCap = signaling.DefaultUploadCap
	}
	if c.MaxPairs <= 0 {
		c.MaxPairs = 32
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 1500 * time.Millisecond
	}
	if c.HoldersPerTrack <= 0 {
		c.HoldersPerTrack = 32
	}
	if c.MaxPartialTracks <= 0 {
		c.MaxPartialTracks = 8
	}
	if c.FirstCopyTTL <= 0 {
		c.FirstCopyTTL = 20 * time.Second
	}
	if c.FirstCopyStripe <= 0 {
		c.FirstCopyStripe = 8
	}
	if c.TURNCredentialTTL <= 0 {
		c.TURNCredentialTTL = 12 * time.Hour
	}
	if c.SendWindow <= 0 {
		c.SendWindow = 128 << 10
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = chunkproto.MaxRequests
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 128
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 20 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
	return c
}

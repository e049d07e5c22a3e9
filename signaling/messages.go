// Package signaling defines the JSON messages exchanged on the hub's
// WebSocket control connection (GET /ws): the hello/welcome handshake, the
// SDP/ICE relay for the hub's own PeerConnection and for peer↔peer pairs,
// tracker lookups and peer statistics. docs/PROTOCOL.md is the normative
// description; this package is its Go form, shared by the hub and Go peers.
package signaling

import (
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/internal/jsonmsg"
)

// Version is the protocol version sent in Hello.
const Version = 1

// MaxMessageSize is the largest WebSocket message either side may send;
// the hub closes a connection that sends more.
const MaxMessageSize = 64 << 10

// HubID is the reserved peer id of the hub itself: a Signal with To == HubID
// (or To empty and no PairID) negotiates the peer's PeerConnection with the hub.
const HubID = "hub"

// Limits a peer must respect in its messages.
const (
	// MaxCachedTracks is the most track ids one peer may announce (Hello.Cached
	// plus all Announce messages); the rest are ignored.
	MaxCachedTracks = 256
	// MaxUploadCap is the largest upload cap a peer may declare.
	MaxUploadCap = 16
	// DefaultUploadCap applies when Hello.UploadCap is 0.
	DefaultUploadCap = 4
	// MaxPairSignals is how many signals the hub relays for one pair (both
	// directions together); more are refused with CodeRateLimited.
	MaxPairSignals = 256
)

// Message types.
const (
	TypeHello        = "hello"
	TypeWelcome      = "welcome"
	TypeError        = "error"
	TypeSignal       = "signal"
	TypeLookup       = "lookup"
	TypeLookupResult = "lookup_result"
	TypeCanUpload    = "can_upload"
	TypeUploadReply  = "upload_reply"
	TypePaired       = "paired"
	TypeUnpair       = "unpair"
	TypeUploadDone   = "upload_done"
	TypeCompleted    = "completed"
	TypeAnnounce     = "announce"
	TypeStats        = "stats"
	TypePing         = "ping"
	TypePong         = "pong"
	TypeReport       = "report"
	TypeHolding      = chunkproto.TypeHolding
	TypeICEServers   = "ice_servers"
	TypeCatalog      = "catalog"
)

// ICETransportPolicyRelay in Welcome.ICETransportPolicy: peer↔peer
// connections use TURN relays only, so peers never learn each other's
// addresses.
const ICETransportPolicyRelay = "relay"

// Error codes carried by Error.Code.
const (
	CodeBadMessage      = "bad_message"       // unparsable JSON, unknown type or invalid field
	CodeBadVersion      = "bad_version"       // Hello.Version unsupported (fatal)
	CodeHelloRequired   = "hello_required"    // first message was not hello (fatal)
	CodeServerFull      = "server_full"       // max peers reached (fatal)
	CodeNotPaired       = "not_paired"        // signal to a peer outside the sender's pair
	CodeUnknownTrack    = "unknown_track"     // track id not in the store
	CodeTooManyLookups  = "too_many_lookups"  // pending lookup cap reached
	CodeDuplicateLookup = "duplicate_lookup"  // a lookup for this track is pending
	CodeTooManyPairs    = "too_many_pairs"    // the peer is in too many pairs to start a lookup
	CodeRateLimited     = "rate_limited"      // too many messages from this connection, or the pair used up its relayed signal budget
	CodeUnknownPair     = "unknown_pair"      // unpair/upload_done for an unknown pair
	CodeInternal        = "internal"          // hub-side failure
	CodeNegotiation     = "negotiation_error" // bad SDP/candidate for the hub PeerConnection
)

// Roles in Paired.Role.
const (
	RoleSeeder  = "seeder"
	RoleLeecher = "leecher"
)

// Reasons in Report.Reason: what the reported seeder did.
const (
	ReportHashMismatch = "hash_mismatch" // a chunk failed the manifest's SHA-256 check
	ReportBadMessage   = "bad_message"   // a malformed, oversize or out-of-protocol message
	ReportTimeout      = "timeout"       // a requested range got no answer in time
)

// Reasons in LookupResult.Reason and Unpair.Reason.
const (
	ReasonTimeout      = "timeout"       // no candidate said yes in time
	ReasonNoCandidates = "no_candidates" // nobody online holds any chunk of the track: a first copy
	ReasonBusy         = "busy"          // holders exist, none can serve the requester now: ask again later
	ReasonAllRefused   = "all_refused"   // every candidate said no
	ReasonPeerLeft     = "peer_left"     // the other side disconnected
	ReasonRequested    = "requested"     // the other side sent unpair
	ReasonShutdown     = "shutdown"      // the hub is closing
)

// ErrMalformed is returned (wrapped) for a message that does not follow the protocol.
var ErrMalformed = errors.New("signaling: malformed message")

// Message is one WebSocket text message.
type Message interface {
	// MessageType returns the value of the message's "type" field.
	MessageType() string
}

// Hello is the first message of a peer (peer → hub).
type Hello struct {
	Version int `json:"version"`
	// Cached lists track ids the peer holds completely and may seed.
	Cached []string `json:"cached,omitempty"`
	// UploadCap is how many leechers the peer serves at once (0 = default 4).
	UploadCap int `json:"upload_cap,omitempty"`
}

// Welcome answers Hello (hub → peer). The hub then sends its SDP offer.
type Welcome struct {
	// PeerID is the id the hub assigned; it stamps From on relayed messages.
	PeerID string `json:"peer_id"`
	// ICEServers are STUN/TURN servers for peer↔peer PeerConnections.
	ICEServers []webrtc.ICEServer `json:"ice_servers,omitempty"`
	// UploadCap is the cap the hub applies to this peer.
	UploadCap int `json:"upload_cap"`
	// ICETransportPolicy is ICETransportPolicyRelay when peer↔peer
	// connections must use TURN relays only; empty: any candidate.
	ICETransportPolicy string `json:"ice_transport_policy,omitempty"`
}

// ICEServers replaces the STUN/TURN servers of Welcome (hub → peer): TURN
// credentials renewed before they expire. New peer↔peer connections use them.
type ICEServers struct {
	ICEServers []webrtc.ICEServer `json:"ice_servers"`
}

// Catalog says that the library changed (hub → peer): tracks were added,
// replaced or removed. A client that shows the catalog fetches
// GET /api/tracks again. The hub sends it at most once a second.
type Catalog struct{}

// Error reports a refused message (hub → peer). Fatal errors are followed
// by a WebSocket close.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	// Ref is the type of the message that caused the error, when known.
	Ref string `json:"ref,omitempty"`
}

// Signal carries one SDP description or one trickled ICE candidate.
// Peer → hub: To is HubID (or empty) for the hub PeerConnection, or the other
// peer of PairID. Hub → peer: From is HubID or the real sender's id.
type Signal struct {
	To        string                     `json:"to,omitempty"`
	From      string                     `json:"from,omitempty"`
	PairID    string                     `json:"pair_id,omitempty"`
	SDP       *webrtc.SessionDescription `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
}

// MaxLookupWant bounds Lookup.Want.
const MaxLookupWant = 8

// MaxChunks bounds a track's chunk count in Holding (media's manifest limit).
const MaxChunks = chunkproto.MaxChunks

// Lookup asks the tracker for peers that can upload Track (peer → hub).
type Lookup struct {
	Track string `json:"track"`
	// Want is how many seeders the peer wants at most (0 = 1, ≤ MaxLookupWant).
	Want int `json:"want,omitempty"`
	// From is the first chunk the peer needs: holders of the chunks from
	// there on are preferred.
	From int `json:"from,omitempty"`
	// Partial accepts peers that hold part of the track (they answer have
	// with a bitfield and serve the chunks they hold); without it only
	// complete holders are candidates.
	Partial bool `json:"partial,omitempty"`
}

// Validate checks the fields of l.
func (l Lookup) Validate() error {
	if err := checkTracks([]string{l.Track}); err != nil {
		return err
	}
	if l.Want < 0 || l.Want > MaxLookupWant {
		return fmt.Errorf("lookup: want %d outside 0..%d: %w", l.Want, MaxLookupWant, ErrMalformed)
	}
	if l.From < 0 || l.From >= MaxChunks {
		return fmt.Errorf("lookup: from %d outside 0..%d: %w", l.From, MaxChunks-1, ErrMalformed)
	}
	return nil
}

// LookupResult ends a lookup (hub → peer). PeerID is empty when no seeder was
// found; then Reason says why. On success Paired messages follow, one per
// seeder: PeerID and PairID name the first, Peers all of them.
type LookupResult struct {
	Track  string       `json:"track"`
	PeerID string       `json:"peer_id"`
	PairID string       `json:"pair_id,omitempty"`
	Peers  []LookupPeer `json:"peers,omitempty"`
	Reason string       `json:"reason,omitempty"`
}

// LookupPeer is one seeder found by a lookup.
type LookupPeer struct {
	PeerID string `json:"peer_id"`
	PairID string `json:"pair_id"`
}

// Holding tells the hub which chunks of Track the peer holds and may serve
// (peer → hub), while it downloads them; it is the chunk protocol's holding
// message (chunkproto.Holding), the same on both transports. Chunks must
// equal the manifest's chunk count. Every bit set counts as Completed; none
// withdraws the peer as a holder of Track.
type Holding = chunkproto.Holding

// NewHolding encodes the chunks present of a track as a Holding.
func NewHolding(track string, present []bool) Holding { return chunkproto.NewHolding(track, present) }

// CanUpload asks a candidate seeder whether it will upload Track now (hub → peer).
type CanUpload struct {
	Track    string `json:"track"`
	LookupID string `json:"lookup_id"`
}

// UploadReply answers CanUpload (peer → hub).
type UploadReply struct {
	LookupID string `json:"lookup_id"`
	OK       bool   `json:"ok"`
}

// Paired tells both peers of a new pair who the other is (hub → peer). The
// leecher creates the PeerConnection and sends the offer.
type Paired struct {
	PairID string `json:"pair_id"`
	// Peer is the other peer's id.
	Peer  string `json:"peer"`
	Track string `json:"track"`
	Role  string `json:"role"`
}

// Unpair ends a pair (either direction). From the hub, Reason says why.
type Unpair struct {
	PairID string `json:"pair_id"`
	Reason string `json:"reason,omitempty"`
}

// UploadDone frees the seeder's upload slot of a pair (seeder → hub); the
// pair itself stays until Unpair.
type UploadDone struct {
	PairID string `json:"pair_id"`
}

// Completed says the peer now holds every chunk of Track (peer → hub).
type Completed struct {
	Track string `json:"track"`
}

// Announce adds tracks the peer holds completely (peer → hub).
type Announce struct {
	Tracks []string `json:"tracks"`
}

// Stats reports counters accumulated since the peer's previous Stats
// (peer → hub). All values are deltas and must be ≥ 0.
type Stats struct {
	HubBytes  int64 `json:"hub_bytes"`  // chunk bytes received from the hub
	PeerBytes int64 `json:"peer_bytes"` // chunk bytes received from peers
	// RelayBytes is the part of PeerBytes that went through a TURN relay.
	RelayBytes    int64 `json:"relay_bytes,omitempty"`
	CacheBytes    int64 `json:"cache_bytes"`    // chunk bytes played from the local cache
	UploadedBytes int64 `json:"uploaded_bytes"` // chunk bytes sent to peers
	BadChunks     int64 `json:"bad_chunks"`     // peer chunks failing the SHA-256 check
	Stalls        int64 `json:"stalls"`         // playback stalls
	// EmergencyFetches counts chunks fetched from the hub because a peer was
	// too slow to deliver them.
	EmergencyFetches int64 `json:"emergency_fetches"`
	// StartupMS lists playback start latencies (ms) since the previous Stats.
	StartupMS []float64 `json:"startup_ms,omitempty"`
}

// Report tells the hub that Peer misbehaved while serving Track to the
// sender (peer → hub). The hub accepts it only from a peer it recently
// paired with Peer (for any track: a pair's DataChannel may serve others),
// answers anything else with error not_paired, and sends nothing on
// success. Peer is then never offered to the sender for Track again, and
// enough distinct reporters drop Peer as a holder of Track
// (docs/PROTOCOL.md §2.3).
type Report struct {
	Peer   string `json:"peer"`
	Track  string `json:"track"`
	Reason string `json:"reason"`
}

// MaxPeerIDLen bounds the peer ids a peer may name in its messages.
const MaxPeerIDLen = 64

// Validate checks the fields of r.
func (r Report) Validate() error {
	if r.Peer == "" || len(r.Peer) > MaxPeerIDLen || r.Peer == HubID {
		return fmt.Errorf("report: peer %.70q: %w", r.Peer, ErrMalformed)
	}
	if !chunkproto.ValidTrackID(r.Track) {
		return fmt.Errorf("report: track id %.70q: %w", r.Track, ErrMalformed)
	}
	switch r.Reason {
	case ReportHashMismatch, ReportBadMessage, ReportTimeout:
	default:
		return fmt.Errorf("report: reason %.40q: %w", r.Reason, ErrMalformed)
	}
	return nil
}

// Ping asks the peer to prove it is alive (hub → peer): it answers Pong.
// The hub sends it when the connection has been quiet for a while and
// closes a connection that stays silent (no WebSocket message, no
// DataChannel message) for its idle timeout.
type Ping struct{}

// Pong answers Ping (peer → hub). Any other message also counts as a sign
// of life.
type Pong struct{}

// MaxStatsValue bounds every Stats counter.
const MaxStatsValue = 1 << 40

// MaxStartupSamples bounds len(Stats.StartupMS).
const MaxStartupSamples = 64

// MessageType implements Message.
func (Hello) MessageType() string { return TypeHello }

// MessageType implements Message.
func (Welcome) MessageType() string { return TypeWelcome }

// MessageType implements Message.
func (ICEServers) MessageType() string { return TypeICEServers }

// MessageType implements Message.
func (Catalog) MessageType() string { return TypeCatalog }

// MessageType implements Message.
func (Error) MessageType() string { return TypeError }

// MessageType implements Message.
func (Signal) MessageType() string { return TypeSignal }

// MessageType implements Message.
func (Lookup) MessageType() string { return TypeLookup }

// MessageType implements Message.
func (LookupResult) MessageType() string { return TypeLookupResult }

// MessageType implements Message.
func (CanUpload) MessageType() string { return TypeCanUpload }

// MessageType implements Message.
func (UploadReply) MessageType() string { return TypeUploadReply }

// MessageType implements Message.
func (Paired) MessageType() string { return TypePaired }

// MessageType implements Message.
func (Unpair) MessageType() string { return TypeUnpair }

// MessageType implements Message.
func (UploadDone) MessageType() string { return TypeUploadDone }

// MessageType implements Message.
func (Completed) MessageType() string { return TypeCompleted }

// MessageType implements Message.
func (Announce) MessageType() string { return TypeAnnounce }

// MessageType implements Message.
func (Stats) MessageType() string { return TypeStats }

// MessageType implements Message.
func (Report) MessageType() string { return TypeReport }

// MessageType implements Message.
func (Ping) MessageType() string { return TypePing }

// MessageType implements Message.
func (Pong) MessageType() string { return TypePong }

// Validate checks the fields of s.
func (s Signal) Validate() error {
	if (s.SDP == nil) == (s.Candidate == nil) {
		return fmt.Errorf("signal: exactly one of sdp and candidate: %w", ErrMalformed)
	}
	if s.SDP != nil {
		if s.SDP.Type != webrtc.SDPTypeOffer && s.SDP.Type != webrtc.SDPTypeAnswer {
			return fmt.Errorf("signal: sdp type %q, want offer or answer: %w", s.SDP.Type, ErrMalformed)
		}
		if s.SDP.SDP == "" {
			return fmt.Errorf("signal: empty sdp: %w", ErrMalformed)
		}
	}
	return nil
}

// Validate checks the fields of s.
func (s Stats) Validate() error {
	for _, v := range []int64{s.HubBytes, s.PeerBytes, s.RelayBytes, s.CacheBytes, s.UploadedBytes, s.BadChunks, s.Stalls, s.EmergencyFetches} {
		if v < 0 || v > MaxStatsValue {
			return fmt.Errorf("stats: counter %d out of range: %w", v, ErrMalformed)
		}
	}
	if len(s.StartupMS) > MaxStartupSamples {
		return fmt.Errorf("stats: %d startup samples: %w", len(s.StartupMS), ErrMalformed)
	}
	for _, v := range s.StartupMS {
		if !(v >= 0 && v <= 3600e3) {
			return fmt.Errorf("stats: startup %v ms out of range: %w", v, ErrMalformed)
		}
	}
	return nil
}

// Encode returns the JSON text form of m, with its "type" field first.
func Encode(m Message) ([]byte, error) { return jsonmsg.Encode(m) }

// Decode parses one message. Unknown fields are ignored; an unknown or
// missing type, a bad track id or an invalid field is an error wrapping
// ErrMalformed. Decode checks syntax only: whether a track exists, a pair is
// the sender's and so on is the hub's job.
func Decode(data []byte) (Message, error) {
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("decode: %d bytes exceeds %d: %w", len(data), MaxMessageSize, ErrMalformed)
	}
	typ, err := jsonmsg.Type(data, ErrMalformed)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeHello:
		v, err := decodeAs[Hello](data)
		if err != nil {
			return nil, err
		}
		if v.UploadCap < 0 || v.UploadCap > MaxUploadCap {
			return nil, fmt.Errorf("hello: upload_cap %d: %w", v.UploadCap, ErrMalformed)
		}
		if len(v.Cached) > MaxCachedTracks {
			v.Cached = v.Cached[:MaxCachedTracks]
		}
		if err := checkTracks(v.Cached); err != nil {
			return nil, err
		}
		return v, nil
	case TypeWelcome:
		return plain[Welcome](data)
	case TypeICEServers:
		return plain[ICEServers](data)
	case TypeCatalog:
		return plain[Catalog](data)
	case TypeError:
		return plain[Error](data)
	case TypeSignal:
		return validated[Signal](data)
	case TypeLookup:
		return validated[Lookup](data)
	case TypeHolding:
		return validated[Holding](data)
	case TypeLookupResult:
		return plain[LookupResult](data)
	case TypeCanUpload:
		return plain[CanUpload](data)
	case TypeUploadReply:
		v, err := decodeAs[UploadReply](data)
		if err != nil {
			return nil, err
		}
		if v.LookupID == "" {
			return nil, fmt.Errorf("upload_reply: empty lookup_id: %w", ErrMalformed)
		}
		return v, nil
	case TypePaired:
		return plain[Paired](data)
	case TypeUnpair:
		v, err := decodeAs[Unpair](data)
		if err != nil {
			return nil, err
		}
		if v.PairID == "" {
			return nil, fmt.Errorf("unpair: empty pair_id: %w", ErrMalformed)
		}
		return v, nil
	case TypeUploadDone:
		v, err := decodeAs[UploadDone](data)
		if err != nil {
			return nil, err
		}
		if v.PairID == "" {
			return nil, fmt.Errorf("upload_done: empty pair_id: %w", ErrMalformed)
		}
		return v, nil
	case TypeCompleted:
		v, err := decodeAs[Completed](data)
		if err != nil {
			return nil, err
		}
		if err := checkTracks([]string{v.Track}); err != nil {
			return nil, err
		}
		return v, nil
	case TypeAnnounce:
		v, err := decodeAs[Announce](data)
		if err != nil {
			return nil, err
		}
		if len(v.Tracks) > MaxCachedTracks {
			v.Tracks = v.Tracks[:MaxCachedTracks]
		}
		if err := checkTracks(v.Tracks); err != nil {
			return nil, err
		}
		return v, nil
	case TypeStats:
		return validated[Stats](data)
	case TypeReport:
		return validated[Report](data)
	case TypePing:
		return plain[Ping](data)
	case TypePong:
		return plain[Pong](data)
	default:
		return nil, fmt.Errorf("decode: unknown type %q: %w", typ, ErrMalformed)
	}
}

// validated decodes a message whose fields its Validate method checks.
func validated[T jsonmsg.Validator](data []byte) (Message, error) {
	return jsonmsg.Validated[T](data, ErrMalformed)
}

// plain decodes a message that needs no further check.
func plain[T Message](data []byte) (Message, error) { return jsonmsg.Plain[T](data, ErrMalformed) }

func decodeAs[T Message](data []byte) (T, error) { return jsonmsg.As[T](data, ErrMalformed) }

func checkTracks(ids []string) error {
	for _, id := range ids {
		if !chunkproto.ValidTrackID(id) {
			return fmt.Errorf("track id %q: %w", id, ErrMalformed)
		}
	}
	return nil
}

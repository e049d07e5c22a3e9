package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/signaling"
)

// Kinds of Message.
const (
	// KindAsk (request): would Seeder upload Track to Requester? The
	// seeder's hub asks it (can_upload) and answers yes or no.
	KindAsk = "ask"
	// KindPair (request): Seeder said yes to ask Lookup; pair it with
	// Leecher as Pair. The seeder's hub takes an upload slot, sends the
	// seeder paired, and answers whether it did.
	KindPair = "pair"
	// KindSignal: Peer's signal (SDP or ICE) to To, its partner on Pair.
	KindSignal = "signal"
	// KindUnpair: Peer ended Pair (Reason requested or peer_left).
	KindUnpair = "unpair"
	// KindUploadDone: Seeder finished uploading on Pair.
	KindUploadDone = "upload_done"
	// KindReport: Peer, of the sending hub, caught Seeder serving Track
	// badly (Reason hash_mismatch or bad_message; timeouts stay with the
	// reporter's hub). The seeder's hub counts it towards dropping Seeder
	// as a holder of Track, if the sending hub paired the two.
	KindReport = "report"
)

// Message is what hubs send each other on subject ztream.hub.<hub id>.
// From is the sending hub; the other fields are those of Kind.
type Message struct {
	Kind      string          `json:"kind"`
	From      string          `json:"from"`
	Pair      string          `json:"pair,omitempty"`
	Lookup    string          `json:"lookup,omitempty"`
	Track     string          `json:"track,omitempty"`
	Seeder    string          `json:"seeder,omitempty"`
	Requester string          `json:"requester,omitempty"`
	Peer      string          `json:"peer,omitempty"`
	To        string          `json:"to,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Signal    json.RawMessage `json:"signal,omitempty"`
}

// answer is the reply to an ask or a pair request.
type answer struct {
	OK bool `json:"ok"`
}

// MaxMessageBytes bounds a Message on the wire: a peer's largest signal
// and the envelope.
const MaxMessageBytes = signaling.MaxMessageSize + 4<<10

// maxIDLen bounds pair and lookup ids.
const maxIDLen = 64

// errBadMessage is wrapped by every validation error.
var errBadMessage = errors.New("cluster: bad message")

var peerIDSyntax = regexp.MustCompile(`^p-[0-9a-f]{16}$`)

// ValidPeerID reports whether id has the syntax of a hub's peer ids.
func ValidPeerID(id string) bool { return peerIDSyntax.MatchString(id) }

// decodeMessage parses and checks one message: size, kind, ids and, for a
// signal, the peer's signal itself (signaling.Decode). Whether From is a
// live hub and whether the pair exists are the receiver's checks.
func decodeMessage(data []byte) (Message, error) {
	var m Message
	if len(data) > MaxMessageBytes {
		return m, fmt.Errorf("%d bytes: %w", len(data), errBadMessage)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%w: %w", errBadMessage, err)
	}
	if !ValidHubID(m.From) {
		return m, fmt.Errorf("from %q: %w", m.From, errBadMessage)
	}
	if len(m.Pair) > maxIDLen || len(m.Lookup) > maxIDLen || len(m.Reason) > maxIDLen {
		return m, fmt.Errorf("id too long: %w", errBadMessage)
	}
	peers := func(ids ...string) error {
		for _, id := range ids {
			if !ValidPeerID(id) {
				return fmt.Errorf("%s: peer id %q: %w", m.Kind, id, errBadMessage)
			}
		}
		return nil
	}
	switch m.Kind {
	case KindAsk, KindPair:
		if !chunkproto.ValidTrackID(m.Track) || m.Lookup == "" {
			return m, fmt.Errorf("%s: track %q, lookup %q: %w", m.Kind, m.Track, m.Lookup, errBadMessage)
		}
		if m.Kind == KindPair && m.Pair == "" {
			return m, fmt.Errorf("pair: no pair id: %w", errBadMessage)
		}
		return m, peers(m.Seeder, m.Requester)
	case KindSignal:
		if m.Pair == "" {
			return m, fmt.Errorf("signal: no pair id: %w", errBadMessage)
		}
		if err := peers(m.Peer, m.To); err != nil {
			return m, err
		}
		s, err := signaling.Decode(m.Signal)
		if err != nil {
			return m, fmt.Errorf("signal: %w: %w", errBadMessage, err)
		}
		if _, ok := s.(signaling.Signal); !ok {
			return m, fmt.Errorf("signal: a %s: %w", s.MessageType(), errBadMessage)
		}
		return m, nil
	case KindUnpair:
		if m.Pair == "" || (m.Reason != signaling.ReasonRequested && m.Reason != signaling.ReasonPeerLeft) {
			return m, fmt.Errorf("unpair: pair %q, reason %q: %w", m.Pair, m.Reason, errBadMessage)
		}
		return m, peers(m.Peer)
	case KindUploadDone:
		if m.Pair == "" {
			return m, fmt.Errorf("upload_done: no pair id: %w", errBadMessage)
		}
		return m, peers(m.Seeder)
	case KindReport:
		if !chunkproto.ValidTrackID(m.Track) || (m.Reason != signaling.ReportHashMismatch && m.Reason != signaling.ReportBadMessage) {
			return m, fmt.Errorf("report: track %q, reason %q: %w", m.Track, m.Reason, errBadMessage)
		}
		if m.Peer == m.Seeder {
			return m, fmt.Errorf("report: %s reports itself: %w", m.Peer, errBadMessage)
		}
		return m, peers(m.Peer, m.Seeder)
	default:
		return m, fmt.Errorf("kind %q: %w", m.Kind, errBadMessage)
	}
}

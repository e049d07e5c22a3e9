package chunkproto

import (
	"errors"
	"fmt"

	"github.com/ztream/ztream/internal/jsonmsg"
)

// Text message types on a chunks DataChannel.
const (
	TypeRequest   = "request"
	TypeCancel    = "cancel"
	TypeDone      = "done"
	TypeError     = "error"
	TypeHave      = "have"
	TypeHaveReply = "have_reply"
	TypeHolding   = "holding"
)

// Error codes carried by Error.Code.
const (
	// CodeBadRequest: the message could not be parsed or a field is invalid.
	CodeBadRequest = "bad_request"
	// CodeNotFound: the track is unknown to the sender (or not held by a peer).
	CodeNotFound = "not_found"
	// CodeInvalidRange: from/to are outside the track's chunks or from >= to.
	CodeInvalidRange = "invalid_range"
	// CodeTooManyRequests: the requester already has the maximum number of
	// ranges in flight (or, at a hub in front of an origin, asked for too
	// many tracks it had to fetch lately).
	CodeTooManyRequests = "too_many_requests"
	// CodeDuplicateID: a request reused the id of a request still in flight.
	CodeDuplicateID = "duplicate_id"
	// CodeInternal: the sender failed to read the chunks.
	CodeInternal = "internal"
	// CodeUnavailable: the sender cannot serve right now (its store is
	// unreachable, or it is shutting down); retry later or elsewhere.
	CodeUnavailable = "unavailable"
	// CodeRateLimited: the requester sends messages faster than the sender
	// accepts; the message was dropped.
	CodeRateLimited = "rate_limited"
)

// MaxRequests is the default number of ranges a requester may have in flight
// at one sender; more are refused with CodeTooManyRequests.
const MaxRequests = 4

// Message is a JSON text message of the chunk protocol.
type Message interface {
	// MessageType returns the value of the message's "type" field.
	MessageType() string
}

// Request asks for chunks [From, To) of Track, sent in seq order, then a Done
// with the same ID (or an Error). A new request for a track that already has
// a range in flight replaces it: the old range stops without Done.
type Request struct {
	// ID is chosen by the requester, unique among its ranges in flight.
	ID    uint32 `json:"id"`
	Track string `json:"track"`
	From  int    `json:"from"`
	To    int    `json:"to"`
	// FirstCopy (to the hub only) asks for first copies: the hub sends only
	// the chunks of the range it has not sent to another connected peer
	// recently, at most a stripe of them, then Done (PROTOCOL.md §8.4).
	FirstCopy bool `json:"first_copy,omitempty"`
}

// Cancel stops the range with ID. No Done follows; chunks already sent may
// still arrive.
type Cancel struct {
	ID uint32 `json:"id"`
}

// Done says every chunk of range ID was sent.
type Done struct {
	ID uint32 `json:"id"`
}

// Error says range ID failed (or a message was refused); no more chunks of
// it follow. ID is 0 when the failing message had no usable id.
type Error struct {
	ID      uint32 `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// Have asks the remote peer which chunks of Track it holds and would serve;
// the answer is a HaveReply. It also subscribes the asker to the remote's
// Holding updates of Track while their channel is open.
type Have struct {
	Track string `json:"track"`
}

// HaveReply answers Have. OK means the sender holds every chunk and serves
// now; a sender holding part of the track answers OK false with the
// bitfield of what it holds (Chunks, Have as in Holding). Neither: nothing
// to serve.
type HaveReply struct {
	Track  string `json:"track"`
	OK     bool   `json:"ok"`
	Chunks int    `json:"chunks,omitempty"`
	Have   string `json:"have,omitempty"`
}

// MessageType implements Message.
func (Request) MessageType() string { return TypeRequest }

// MessageType implements Message.
func (Cancel) MessageType() string { return TypeCancel }

// MessageType implements Message.
func (Done) MessageType() string { return TypeDone }

// MessageType implements Message.
func (Error) MessageType() string { return TypeError }

// MessageType implements Message.
func (Have) MessageType() string { return TypeHave }

// MessageType implements Message.
func (HaveReply) MessageType() string { return TypeHaveReply }

// ErrEmptyRange is returned (wrapped, along with ErrMalformed) by
// Request.Validate for a range with from < 0 or to <= from.
var ErrEmptyRange = errors.New("chunkproto: empty or negative range")

// Validate checks the fields of r that do not need the manifest: the track
// id syntax and 0 <= From < To (ErrEmptyRange). Errors wrap ErrMalformed.
func (r Request) Validate() error {
	if !ValidTrackID(r.Track) {
		return fmt.Errorf("request %d: track id %q: %w", r.ID, r.Track, ErrMalformed)
	}
	if r.From < 0 || r.To <= r.From {
		return fmt.Errorf("request %d: range [%d,%d): %w: %w", r.ID, r.From, r.To, ErrMalformed, ErrEmptyRange)
	}
	return nil
}

// EncodeMessage returns the JSON text form of m, with its "type" field first.
func EncodeMessage(m Message) ([]byte, error) { return jsonmsg.Encode(m) }

// DecodeMessage parses a JSON text message. Unknown fields are ignored;
// an unknown or missing type is an error wrapping ErrMalformed. Have,
// HaveReply and Holding are validated (track id, bitfield). A Request is
// returned unchecked so that the receiver can answer an Error carrying its
// id: call Validate.
func DecodeMessage(data []byte) (Message, error) {
	if len(data) > MaxTextSize {
		return nil, fmt.Errorf("decode: %d bytes exceeds %d: %w", len(data), MaxTextSize, ErrMalformed)
	}
	typ, err := jsonmsg.Type(data, ErrMalformed)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeRequest:
		return jsonmsg.Plain[Request](data, ErrMalformed)
	case TypeCancel:
		return jsonmsg.Plain[Cancel](data, ErrMalformed)
	case TypeDone:
		return jsonmsg.Plain[Done](data, ErrMalformed)
	case TypeError:
		return jsonmsg.Plain[Error](data, ErrMalformed)
	case TypeHave:
		return jsonmsg.Validated[Have](data, ErrMalformed)
	case TypeHaveReply:
		return jsonmsg.Validated[HaveReply](data, ErrMalformed)
	case TypeHolding:
		return jsonmsg.Validated[Holding](data, ErrMalformed)
	default:
		return nil, fmt.Errorf("decode: unknown type %q: %w", typ, ErrMalformed)
	}
}

// Validate checks the track id.
func (h Have) Validate() error {
	if !ValidTrackID(h.Track) {
		return fmt.Errorf("decode have: track id %.70q: %w", h.Track, ErrMalformed)
	}
	return nil
}

// Validate checks the track id and, when present, the bitfield.
func (r HaveReply) Validate() error {
	if !ValidTrackID(r.Track) {
		return fmt.Errorf("decode have_reply: track id %.70q: %w", r.Track, ErrMalformed)
	}
	if r.Have != "" || r.Chunks != 0 {
		if _, err := DecodeBitfield(r.Have, r.Chunks); err != nil {
			return fmt.Errorf("decode have_reply: %w", err)
		}
	}
	return nil
}

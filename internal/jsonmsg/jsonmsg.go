// Package jsonmsg is the one JSON codec of Ztream's text messages, on the
// WebSocket (package signaling) and on the DataChannels (package
// chunkproto): a JSON object whose "type" field comes first. Each protocol
// package keeps its own message types and its own ErrMalformed, which every
// decoding error here wraps.
package jsonmsg

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Message is a text message: MessageType returns its "type" field.
type Message interface {
	MessageType() string
}

// Validator is a message that checks its own fields.
type Validator interface {
	Message
	Validate() error
}

// Encode returns the JSON form of m with its "type" field first.
func Encode(m Message) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.MessageType(), err)
	}
	t := m.MessageType()
	out := make([]byte, 0, len(body)+len(t)+12)
	out = append(out, `{"type":"`...)
	out = append(out, t...)
	out = append(out, '"')
	if inner := bytes.TrimSpace(body[1 : len(body)-1]); len(inner) > 0 {
		out = append(out, ',')
		out = append(out, inner...)
	}
	return append(out, '}'), nil
}

// Type returns the "type" field of the JSON object data, or an error
// wrapping malformed when data is not a JSON object.
func Type(data []byte, malformed error) (string, error) {
	var env struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return "", fmt.Errorf("decode: %w: %v", malformed, err)
	}
	return env.Type, nil
}

// As decodes data as a T; errors wrap malformed. Unknown fields are ignored.
func As[T Message](data []byte, malformed error) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode %s: %w: %v", v.MessageType(), malformed, err)
	}
	return v, nil
}

// Plain decodes data as a T that needs no further check.
func Plain[T Message](data []byte, malformed error) (Message, error) {
	v, err := As[T](data, malformed)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Validated decodes data as a T and runs its Validate method.
func Validated[T Validator](data []byte, malformed error) (Message, error) {
	v, err := As[T](data, malformed)
	if err != nil {
		return nil, err
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

package jsonmsg

import (
	"errors"
	"fmt"
	"testing"
)

var errBad = errors.New("bad")

type ping struct {
	N int `json:"n"`
}

func (ping) MessageType() string { return "ping" }

func (p ping) Validate() error {
	if p.N < 0 {
		return fmt.Errorf("ping: n %d: %w", p.N, errBad)
	}
	return nil
}

type empty struct{}

func (empty) MessageType() string { return "empty" }

func TestEncodeTypeFirst(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want string
	}{
		{ping{N: 3}, `{"type":"ping","n":3}`},
		{empty{}, `{"type":"empty"}`},
	} {
		got, err := Encode(tc.m)
		if err != nil || string(got) != tc.want {
			t.Errorf("Encode(%#v) = %s, %v; want %s", tc.m, got, err, tc.want)
		}
	}
}

func TestDecode(t *testing.T) {
	typ, err := Type([]byte(`{"n":1,"type":"ping"}`), errBad)
	if err != nil || typ != "ping" {
		t.Fatalf("Type = %q, %v", typ, err)
	}
	if _, err := Type([]byte(`[1]`), errBad); !errors.Is(err, errBad) {
		t.Fatalf("Type of an array: %v", err)
	}
	m, err := Validated[ping]([]byte(`{"type":"ping","n":2,"extra":true}`), errBad)
	if err != nil || m != (ping{N: 2}) {
		t.Fatalf("Validated = %#v, %v", m, err)
	}
	if _, err := Validated[ping]([]byte(`{"type":"ping","n":-1}`), errBad); !errors.Is(err, errBad) {
		t.Fatalf("invalid field: %v", err)
	}
	if _, err := Plain[ping]([]byte(`{"type":"ping","n":"x"}`), errBad); !errors.Is(err, errBad) {
		t.Fatalf("wrong field type: %v", err)
	}
}

package peer

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"
)

// The shared scenario vectors of the peer algorithm: the browser's
// web/test/unit/swarm.test.mjs runs the same file.
const scheduleVectors = "../testdata/peer-algorithm/schedule.json"

type vecRange [2]int

// vecSet is a list of [from, to) ranges of chunks.
type vecSet []vecRange

func (s vecSet) flags(n int) []bool {
	f := make([]bool, n)
	for _, r := range s {
		for c := r[0]; c < r[1] && c < n; c++ {
			f[c] = true
		}
	}
	return f
}

type vecState struct {
	Active    bool `json:"active"`
	From      int  `json:"from"`
	To        int  `json:"to"`
	Next      int  `json:"next"`
	Stalled   bool `json:"stalled"`
	FirstCopy bool `json:"first_copy"`
}

func (v vecState) state() SourceState {
	return SourceState(v)
}

type vecCase struct {
	Name   string      `json:"name"`
	Config SchedConfig `json:"config"`
	Chunks int         `json:"chunks"`
	// ChunkMS gives each chunk's duration; without it, Chunks chunks of 1 s.
	ChunkMS       []float64 `json:"chunk_ms"`
	Present       vecSet    `json:"present"`
	PlayheadMS    float64   `json:"playhead_ms"`
	Hub           vecState  `json:"hub"`
	P2P           bool      `json:"p2p"`
	Waiting       bool      `json:"waiting"`
	FirstCopyHold bool      `json:"first_copy_hold"`
	StartLate     bool      `json:"start_late"`
	Peers         []struct {
		State vecState `json:"state"`
		Has   *vecSet  `json:"has"`
	} `json:"peers"`
	Want struct {
		Hub          []int   `json:"hub"`
		HubFirstCopy bool    `json:"hub_first_copy"`
		Peers        [][]int `json:"peers"`
	} `json:"want"`
}

func loadVectors(t *testing.T) []vecCase {
	t.Helper()
	data, err := os.ReadFile(scheduleVectors)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		About string    `json:"about"`
		Cases []vecCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%s: %v", scheduleVectors, err)
	}
	if len(file.Cases) < 20 {
		t.Fatalf("%s: only %d cases", scheduleVectors, len(file.Cases))
	}
	return file.Cases
}

func toRange(r []int) Range {
	if len(r) != 2 {
		return Range{}
	}
	return Range{From: r[0], To: r[1]}
}

func TestScheduleVectors(t *testing.T) {
	for _, vc := range loadVectors(t) {
		t.Run(vc.Name, func(t *testing.T) {
			durs := vc.ChunkMS
			if durs == nil {
				for range vc.Chunks {
					durs = append(durs, 1000)
				}
			}
			tl := timelineFromDurations(durs...)
			in := SchedInput{
				Timeline: tl, Present: vc.Present.flags(tl.Len()), PlayheadMS: vc.PlayheadMS,
				Hub: vc.Hub.state(), P2P: vc.P2P, Waiting: vc.Waiting, FirstCopyHold: vc.FirstCopyHold,
				StartLate: vc.StartLate,
			}
			for _, p := range vc.Peers {
				ps := PeerSource{State: p.State.state()}
				if p.Has != nil {
					ps.Has = p.Has.flags(tl.Len())
				}
				in.Peers = append(in.Peers, ps)
			}
			got := Schedule(vc.Config, in)
			want := SchedDecision{Hub: toRange(vc.Want.Hub), HubFirstCopy: vc.Want.HubFirstCopy, Peers: make([]Range, len(in.Peers))}
			for i, r := range vc.Want.Peers {
				want.Peers[i] = toRange(r)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

// algorithmFile holds DefaultAlgorithm as JSON; the browser's unit tests
// check their defaults against it (constants from one place).
const algorithmFile = "../testdata/peer-algorithm/algorithm.json"

func TestDefaultAlgorithmFile(t *testing.T) {
	got, err := json.MarshalIndent(DefaultAlgorithm(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if os.Getenv("ZTREAM_WRITE_ALGORITHM") != "" {
		if err := os.WriteFile(algorithmFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(algorithmFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale (run ZTREAM_WRITE_ALGORITHM=1 go test -run TestDefaultAlgorithmFile ./peer/):\n%s", algorithmFile, got)
	}
}

// lookupBackoffVectors are the steps of PROTOCOL.md §8.2's lookup backoff,
// run by the browser's unit tests too.
const lookupBackoffVectors = "../testdata/peer-algorithm/lookup-backoff.json"

func TestLookupBackoffVectors(t *testing.T) {
	raw, err := os.ReadFile(lookupBackoffVectors)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		RetryMS float64 `json:"lookup_retry_ms"`
		MaxMS   float64 `json:"lookup_backoff_max_ms"`
		Cases   []struct {
			Name  string `json:"name"`
			Steps []struct {
				AtMS    float64 `json:"at_ms"`
				Event   string  `json:"event"`
				UntilMS float64 `json:"until_ms"`
				Holds   bool    `json:"holds"`
			} `json:"steps"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if def := DefaultAlgorithm(); v.RetryMS != def.LookupRetryMS || v.MaxMS != def.LookupBackoffMaxMS {
		t.Errorf("vectors use %v/%v ms, the defaults are %v/%v", v.RetryMS, v.MaxMS, def.LookupRetryMS, def.LookupBackoffMaxMS)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	epoch := time.Unix(1_000_000, 0)
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			b := newLookupBackoff(v.RetryMS, v.MaxMS, 1)
			for i, st := range c.Steps {
				now := epoch.Add(ms(st.AtMS))
				switch st.Event {
				case "failed":
					b.failed(now)
				case "opened":
					b.opened()
				case "holds":
					if got := b.holds(now); got != st.Holds {
						t.Fatalf("step %d: holds at %v ms = %v, want %v", i, st.AtMS, got, st.Holds)
					}
					continue
				default:
					t.Fatalf("step %d: unknown event %q", i, st.Event)
				}
				var got float64
				if !b.until.IsZero() {
					got = float64(b.until.Sub(epoch)) / float64(time.Millisecond)
				}
				if got != st.UntilMS {
					t.Fatalf("step %d (%s at %v ms): held until %v ms, want %v", i, st.Event, st.AtMS, got, st.UntilMS)
				}
			}
		})
	}
}

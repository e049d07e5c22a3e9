package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Scenario is everything a run models: the listeners, the catalog, the
// links and the server side. Zero fields take the defaults of the
// built-in "spotify" scenario (Defaults); a scenario file (JSON or YAML)
// sets what it changes.
type Scenario struct {
	Name string `json:"name"`
	// Seed makes a run reproducible: the same scenario and seed give the
	// same report (wall time and memory aside).
	Seed uint64 `json:"seed"`
	// Listeners is the mean number of listeners online at once.
	Listeners int `json:"listeners"`
	// Hours is the simulated time.
	Hours float64 `json:"hours"`
	// Users is how many distinct people come and go (their caches persist
	// between their sessions); default 2 × Listeners.
	Users int `json:"users"`
	// DailyCurve holds 24 relative arrival rates, one per hour of the day
	// (scaled to a mean of 1); empty: the same rate all day. StartHour is
	// the hour of day at the start.
	DailyCurve []float64 `json:"daily_curve"`
	StartHour  float64   `json:"start_hour"`
	Catalog    Catalog   `json:"catalog"`
	Session    Session   `json:"session"`
	Network    Network   `json:"network"`
	// CacheMB is each listener's cache (persistent across sessions, LRU).
	CacheMB float64 `json:"cache_mb"`
	// WarmCache starts every listener's cache with its favourite tracks
	// (listeners who used the service before); false: empty caches.
	WarmCache bool `json:"warm_cache"`
	// Churn is the probability that a listener closes the tab during a
	// track (at a uniform point of it), ending the session.
	Churn float64 `json:"churn"`
	// UploadCap is how many leechers a listener serves at once.
	UploadCap int `json:"upload_cap"`
	// Hubs is the number of hubs sharing the swarm (through NATS).
	// Listeners are spread over them round-robin as they come online;
	// each hub has its own first-copy memory (as each real hub does), and
	// asks that cross hubs take Network.CrossHubMS more. The tracker is
	// one: the cluster shares holdings, and the delay of that sharing is
	// not modelled.
	Hubs int `json:"hubs"`
	// Flash, when set, adds a release-day crowd.
	Flash *Flash `json:"flash_crowd,omitempty"`
	// Load, when set, replays a `ztream load` run instead of the listeners
	// above (the calibration against real peers).
	Load *LoadRun `json:"load,omitempty"`
	// Speed plays media this much faster than real time, as `ztream load
	// --speed` does (default 1).
	Speed float64 `json:"speed,omitempty"`
	// Server holds the hub's measured costs used to project its CPU.
	Server ServerCosts `json:"server"`
}

// Catalog is the library: a Zipf popularity over Tracks tracks of uniform
// length between MinSec and MaxSec.
type Catalog struct {
	Tracks int `json:"tracks"`
	// ZipfS is the Zipf exponent of popularity (> 1).
	ZipfS       float64 `json:"zipf_s"`
	MinSec      float64 `json:"min_sec"`
	MaxSec      float64 `json:"max_sec"`
	BitrateKbps int     `json:"bitrate_kbps"`
}

// Session is what a listener does once online.
type Session struct {
	// MeanTracks is the mean number of tracks played per session
	// (geometric).
	MeanTracks float64 `json:"mean_tracks"`
	// RepeatShare is the share of plays a listener picks among their own
	// favourite tracks (the rest is drawn from the whole catalog).
	RepeatShare float64 `json:"repeat_share"`
	// Favourites is how many favourite tracks a listener has.
	Favourites int `json:"favourites"`
}

// Network models the links.
type Network struct {
	// UploadKbps is a listener's upload bandwidth, shared by its uploads.
	UploadKbps Dist `json:"upload_kbps"`
	// RTTMS is a listener's round trip time to others (a pair's RTT is the
	// mean of both), HubRTTMS its RTT to the hub.
	RTTMS    Dist `json:"rtt_ms"`
	HubRTTMS Dist `json:"hub_rtt_ms"`
	// HubStreamKbps is how fast the hub sends one listener a range.
	HubStreamKbps float64 `json:"hub_stream_kbps"`
	// Unreachable is the share of pairs that cannot connect directly (both
	// behind NATs no path crosses). With TURN they connect through a relay
	// (TURNExtraRTTMS more RTT); without, the link fails after LinkFailMS.
	Unreachable    float64 `json:"unreachable"`
	TURN           bool    `json:"turn"`
	TURNExtraRTTMS float64 `json:"turn_extra_rtt_ms"`
	// LinkSetupRTTs is how many pair RTTs a peer link takes to open
	// (signaling through the hub, ICE, DTLS, SCTP).
	LinkSetupRTTs float64 `json:"link_setup_rtts"`
	// LinkSetupMS is added to a link's setup (the CPU of ICE and DTLS:
	// what a loopback run's setup takes).
	LinkSetupMS float64 `json:"link_setup_ms"`
	LinkFailMS  float64 `json:"link_fail_ms"`
	// CrossHubMS is added to a can_upload question whose seeder is on
	// another hub than the listener who looks it up: the relay through
	// NATS to that hub and the answer's way back.
	CrossHubMS float64 `json:"cross_hub_ms"`
}

// Flash is a release-day crowd: Listeners new listeners arrive within
// Minutes (uniformly, from AtMinute) and each plays a new album of
// AlbumTracks tracks, in order, that nobody holds yet.
type Flash struct {
	Listeners   int     `json:"listeners"`
	AtMinute    float64 `json:"at_minute"`
	Minutes     float64 `json:"minutes"`
	AlbumTracks int     `json:"album_tracks"`
}

// LoadRun is a `ztream load` run: Peers peers join evenly over RampSec,
// each plays tracks picked by the catalog's Zipf popularity, one after the
// other, starting new ones until DurationSec; TrackSec, when set, gives
// the catalog's track lengths (the demo library's: 130, 150, 165).
type LoadRun struct {
	Peers       int       `json:"peers"`
	RampSec     float64   `json:"ramp_sec"`
	DurationSec float64   `json:"duration_sec"`
	TrackSec    []float64 `json:"track_sec,omitempty"`
}

// ServerCosts are the hub's costs measured by the bench (docs/BENCHMARKS.md),
// used to project its CPU: per MB sent, per join and per connected peer.
type ServerCosts struct {
	CPUSecondsPerMB   float64 `json:"cpu_s_per_mb"`
	CPUSecondsPerJoin float64 `json:"cpu_s_per_join"`
	IdleCoresPerPeer  float64 `json:"idle_cores_per_peer"`
}

// Dist is a distribution of a positive quantity: "fixed" (Value),
// "uniform" (Min..Max) or "lognormal" (Median, Sigma; clamped to Min..Max
// when they are set).
type Dist struct {
	Kind   string  `json:"kind"`
	Value  float64 `json:"value,omitempty"`
	Min    float64 `json:"min,omitempty"`
	Max    float64 `json:"max,omitempty"`
	Median float64 `json:"median,omitempty"`
	Sigma  float64 `json:"sigma,omitempty"`
}

// Draw returns one value of d.
func (d Dist) Draw(r *rand.Rand) float64 {
	var v float64
	switch d.Kind {
	case "uniform":
		v = d.Min + r.Float64()*(d.Max-d.Min)
	case "lognormal":
		v = d.Median * math.Exp(d.Sigma*r.NormFloat64())
	default:
		v = d.Value
	}
	if d.Kind != "fixed" {
		if d.Min > 0 {
			v = max(v, d.Min)
		}
		if d.Max > 0 {
			v = min(v, d.Max)
		}
	}
	return v
}

func (d Dist) check(name string) error {
	switch d.Kind {
	case "fixed":
		if d.Value <= 0 {
			return fmt.Errorf("%s: a fixed value must be > 0", name)
		}
	case "uniform":
		if d.Min <= 0 || d.Max < d.Min {
			return fmt.Errorf("%s: uniform needs 0 < min ≤ max", name)
		}
	case "lognormal":
		if d.Median <= 0 || d.Sigma < 0 {
			return fmt.Errorf("%s: lognormal needs median > 0 and sigma ≥ 0", name)
		}
	default:
		return fmt.Errorf("%s: kind %q: want fixed, uniform or lognormal", name, d.Kind)
	}
	return nil
}

// Defaults returns the built-in "spotify" scenario: a day of 100,000
// listeners online on average over a 1M-track catalog, with Spotify's
// listening habits of 2010 as far as they are known (Kreitz & Niemelä:
// most plays are of tracks the listener played before).
func Defaults() Scenario {
	return Scenario{
		Name:      "spotify",
		Seed:      1,
		Listeners: 100_000,
		Hours:     24,
		// Relative listening by hour of day (a typical diurnal curve: low at
		// night, an evening peak).
		DailyCurve: []float64{0.45, 0.3, 0.22, 0.18, 0.18, 0.25, 0.45, 0.75, 0.95, 1.0, 1.05, 1.1,
			1.15, 1.15, 1.15, 1.2, 1.3, 1.45, 1.6, 1.7, 1.7, 1.55, 1.2, 0.8},
		Catalog: Catalog{Tracks: 1_000_000, ZipfS: 1.05, MinSec: 180, MaxSec: 300, BitrateKbps: 128},
		Session: Session{MeanTracks: 8, RepeatShare: 0.6, Favourites: 150},
		Network: Network{
			UploadKbps:     Dist{Kind: "lognormal", Median: 2000, Sigma: 0.8, Min: 256, Max: 50_000},
			RTTMS:          Dist{Kind: "lognormal", Median: 60, Sigma: 0.5, Min: 5, Max: 400},
			HubRTTMS:       Dist{Kind: "lognormal", Median: 40, Sigma: 0.5, Min: 2, Max: 300},
			HubStreamKbps:  4000,
			Unreachable:    0.1,
			TURNExtraRTTMS: 40,
			LinkSetupRTTs:  4,
			LinkFailMS:     5000,
			CrossHubMS:     5,
		},
		CacheMB:   500,
		WarmCache: true,
		Churn:     0.05,
		UploadCap: 4,
		Hubs:      1,
		// docs/BENCHMARKS.md, 50 peers at 10x without P2P: 25.2 hub CPU-s for
		// 521 MB; 4 ms per join; 0.0172 % of a core per idle peer.
		Server: ServerCosts{CPUSecondsPerMB: 25.2 / 521.0, CPUSecondsPerJoin: 0.004, IdleCoresPerPeer: 0.000172},
	}
}

// Builtin returns the scenarios known by name: spotify (Defaults), flash
// (a release-day crowd), community (a small server) and unreachable (30 %
// of pairs cannot connect directly).
func Builtin(name string) (Scenario, bool) {
	s := Defaults()
	switch name {
	case "spotify", "":
	case "flash":
		s.Name = "flash"
		s.Listeners = 0
		s.Users = 50_000
		s.Hours = 1
		s.DailyCurve = nil
		s.Flash = &Flash{Listeners: 50_000, AtMinute: 0, Minutes: 10, AlbumTracks: 12}
	case "community":
		s.Name = "community"
		s.Listeners = 200
		s.Users = 400
		s.Catalog.Tracks = 20_000
		s.Session.Favourites = 100
	case "unreachable":
		s.Name = "unreachable"
		s.Network.Unreachable = 0.3
	default:
		return Scenario{}, false
	}
	return s, true
}

// BuiltinNames lists the names Builtin knows.
func BuiltinNames() []string { return []string{"spotify", "flash", "community", "unreachable"} }

// Load reads a scenario: a built-in name, or a JSON or YAML file (.yaml,
// .yml) whose fields override the defaults. Unknown fields are errors, and
// so are repeated ones in YAML.
func Load(nameOrFile string) (Scenario, error) {
	if s, ok := Builtin(nameOrFile); ok {
		return s, nil
	}
	data, err := os.ReadFile(nameOrFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(nameOrFile, "/.") {
			return Scenario{}, fmt.Errorf("scenario %q: not a file, nor one of %s", nameOrFile, strings.Join(BuiltinNames(), ", "))
		}
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	ext := filepath.Ext(nameOrFile)
	if ext == ".yaml" || ext == ".yml" {
		// The same fields as JSON: YAML is read as the JSON it stands for.
		if data, err = yaml.YAMLToJSONStrict(data); err != nil {
			return Scenario{}, fmt.Errorf("scenario %s: %w", nameOrFile, err)
		}
	}
	s := Defaults()
	s.Name = strings.TrimSuffix(filepath.Base(nameOrFile), ext)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", nameOrFile, err)
	}
	return s, nil
}

// Check reports the first thing wrong with s.
func (s *Scenario) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Listeners < 0 || (s.Listeners == 0 && s.Flash == nil && s.Load == nil) {
		bad("listeners: %d (want > 0, or a flash crowd or a load run)", s.Listeners)
	}
	if s.StartHour < 0 || s.StartHour >= 24 {
		bad("start_hour: %g (want 0 ≤ start_hour < 24)", s.StartHour)
	}
	if s.Hours <= 0 || s.Hours > 24*365 {
		bad("hours: %g (want 0 < hours ≤ 8760)", s.Hours)
	}
	if len(s.DailyCurve) != 0 && (len(s.DailyCurve) != 24 || slices.ContainsFunc(s.DailyCurve, func(v float64) bool { return v < 0 })) {
		bad("daily_curve: want 24 values ≥ 0 (or none)")
	}
	if c := s.Catalog; c.Tracks < 1 || c.ZipfS <= 1 || c.MinSec <= 0 || c.MaxSec < c.MinSec || c.BitrateKbps <= 0 {
		bad("catalog: want tracks ≥ 1, zipf_s > 1, 0 < min_sec ≤ max_sec, bitrate_kbps > 0")
	}
	if ss := s.Session; ss.MeanTracks < 1 || ss.RepeatShare < 0 || ss.RepeatShare > 1 || (ss.RepeatShare > 0 && ss.Favourites < 1) {
		bad("session: want mean_tracks ≥ 1, 0 ≤ repeat_share ≤ 1, favourites ≥ 1 with repeats")
	}
	n := s.Network
	for _, d := range []struct {
		name string
		d    Dist
	}{{"upload_kbps", n.UploadKbps}, {"rtt_ms", n.RTTMS}, {"hub_rtt_ms", n.HubRTTMS}} {
		if err := d.d.check("network." + d.name); err != nil {
			errs = append(errs, err)
		}
	}
	if n.HubStreamKbps <= 0 || n.Unreachable < 0 || n.Unreachable > 1 || n.LinkSetupRTTs < 0 || n.LinkFailMS <= 0 || n.CrossHubMS < 0 {
		bad("network: want hub_stream_kbps > 0, 0 ≤ unreachable ≤ 1, link_setup_rtts ≥ 0, link_fail_ms > 0, cross_hub_ms ≥ 0")
	}
	if s.CacheMB < 0 || s.Churn < 0 || s.Churn > 1 || s.UploadCap < 0 || s.Hubs < 1 {
		bad("want cache_mb ≥ 0, 0 ≤ churn ≤ 1, upload_cap ≥ 0, hubs ≥ 1")
	}
	if l := s.Load; l != nil && (l.Peers < 1 || l.RampSec < 0 || l.DurationSec <= 0 || (len(l.TrackSec) > 0 && len(l.TrackSec) != s.Catalog.Tracks)) {
		bad("load: want peers ≥ 1, ramp_sec ≥ 0, duration_sec > 0, and one track_sec per catalog track")
	}
	if s.Speed < 0 {
		bad("speed: %g (want ≥ 1, or 0 for 1)", s.Speed)
	}
	if f := s.Flash; f != nil && (f.Listeners < 1 || f.Minutes <= 0 || f.AlbumTracks < 1 || f.AtMinute < 0) {
		bad("flash_crowd: want listeners ≥ 1, minutes > 0, album_tracks ≥ 1, at_minute ≥ 0")
	}
	return errors.Join(errs...)
}

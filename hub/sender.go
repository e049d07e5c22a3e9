package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/datachannel"
	"github.com/pion/webrtc/v4"
	"github.com/ztream/ztream/chunkproto"
	"github.com/ztream/ztream/firstcopy"
	"github.com/ztream/ztream/store"
	"golang.org/x/time/rate"
)

// senderQueue bounds the DataChannel messages waiting for the sender
// goroutine; a peer that fills it is disconnected.
const senderQueue = 64

// idleRefresh is how often an idle sender refreshes the buffered-bytes gauge
// while its DataChannel still holds data.
const idleRefresh = time.Second

// chunkSender serves the chunk protocol on the hub's DataChannel of one
// peer: one goroutine owns every range in flight, pulls chunks from the
// store one at a time, interleaves ranges round-robin and waits whenever the
// channel's bufferedAmount exceeds the send window.
type chunkSender struct {
	p    *participant // the owner: its id, context, log and failure
	env  senderEnv
	dc   *webrtc.DataChannel
	cmds chan chunkproto.Message
	low  chan struct{}
	// limiter and strikes rate-limit the peer's messages (readLoop's).
	limiter, strikes *rate.Limiter

	// Owned by the run goroutine.
	ranges   []*chunkRange
	next     int   // round-robin position
	reported int64 // bufferedAmount last added to the metrics gauge
	// granted lists the tracks whose first request granted p2p byte
	// budgets (see grantPlayback), at most maxGrantedTracks.
	granted map[string]struct{}
}

// senderEnv is what a chunk sender uses of its hub: settings, read-only,
// and the hub's shared parts, each of which locks itself. The hub builds it
// once (Hub.senv); a sender never reaches into the hub otherwise.
type senderEnv struct {
	cfg          *Config
	metrics      Metrics
	st           store.Store
	shapes       *shapeCache
	copies       *firstcopy.Copies
	activeRanges *atomic.Int64
	draining     *atomic.Bool
	// connected reports whether a peer id is connected; partnersOf
	// lists the peers in a pair with p now (the pair table's).
	connected  func(id string) bool
	partnersOf func(p *participant) []*participant
}

// maxGrantedTracks bounds chunkSender.granted: the playbacks of one
// connection that grant p2p byte budgets.
const maxGrantedTracks = 256

// chunkRange is one request in flight.
type chunkRange struct {
	id       uint32
	track    string
	next, to int
	it       store.ChunkIterator
}

func newChunkSender(p *participant, env senderEnv, dc *webrtc.DataChannel) *chunkSender {
	s := &chunkSender{
		p:    p,
		env:  env,
		dc:   dc,
		cmds: make(chan chunkproto.Message, senderQueue),
		low:  make(chan struct{}, 1),

		limiter: rate.NewLimiter(rate.Limit(env.cfg.DataChannelRate), env.cfg.DataChannelBurst),
		strikes: rate.NewLimiter(1, max(1, env.cfg.DataChannelBurst/4)),
	}
	p.dc.Store(dc)
	dc.SetBufferedAmountLowThreshold(uint64(env.cfg.SendWindow / 2))
	dc.OnBufferedAmountLow(func() {
		select {
		case s.low <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(func() {
		// The hub's API detaches DataChannels (hub.New): this goroutine
		// reads with a buffer of the largest message the hub accepts
		// instead of Pion's 64 KiB one per channel.
		raw, err := dc.DetachWithDeadline()
		if err != nil {
			p.log.Error("detach data channel", "err", err)
			p.fail(websocket.StatusInternalError, "data channel failed")
			return
		}
		p.log.Debug("chunks data channel open")
		p.spawn(func() { s.readLoop(raw) })
		p.spawn(func() { s.run(p.ctx) })
	})
	return s
}

// readLoop reads the peer's messages until the channel closes, which ends
// the participant (a detached channel fires no OnClose).
func (s *chunkSender) readLoop(raw datachannel.ReadWriteCloserDeadliner) {
	// The participant's end ends the read (closing the stream would not:
	// it only closes the outgoing direction).
	stop := context.AfterFunc(s.p.ctx, func() { _ = raw.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, chunkproto.MaxTextSize)
	for {
		n, isString, err := raw.ReadDataChannel(buf)
		switch {
		case errors.Is(err, io.ErrShortBuffer):
			// A message larger than any the protocol allows stays stuck at
			// the head of the stream: the peer goes.
			s.env.metrics.SignalingRejected("too_large")
			s.p.fail(websocket.StatusPolicyViolation, "data channel message too large")
			return
		case err != nil:
			if s.p.ctx.Err() == nil { // else the participant is ending anyway
				s.p.fail(websocket.StatusInternalError, "data channel closed")
			}
			return
		}
		s.onMessage(buf[:n], isString)
	}
}

// onMessage decodes one message of the peer and hands it to the sender
// goroutine; data is only valid during the call.
func (s *chunkSender) onMessage(data []byte, isString bool) {
	s.p.touch()
	if !s.limiter.Allow() {
		s.env.metrics.SignalingRejected("dc_rate_limited")
		if !s.strikes.Allow() {
			s.p.fail(websocket.StatusPolicyViolation, "data channel rate_limited")
			return
		}
		s.reply(chunkproto.Error{Code: chunkproto.CodeRateLimited, Message: fmt.Sprintf("more than %g messages/s", s.env.cfg.DataChannelRate)})
		return
	}
	if !isString {
		s.reply(chunkproto.Error{Code: chunkproto.CodeBadRequest, Message: "the hub accepts text messages only"})
		return
	}
	m, err := chunkproto.DecodeMessage(data)
	if err != nil {
		s.reply(chunkproto.Error{Code: chunkproto.CodeBadRequest, Message: truncate(err.Error())})
		return
	}
	select {
	case s.cmds <- m:
	default:
		s.env.metrics.SignalingRejected("slow_consumer")
		s.p.fail(websocket.StatusPolicyViolation, "too many data channel messages")
	}
}

func (s *chunkSender) reply(m chunkproto.Message) {
	b, err := chunkproto.EncodeMessage(m)
	if err != nil {
		s.p.log.Error("encode chunk message", "err", err)
		return
	}
	if err := s.dc.SendText(string(b)); err != nil {
		s.p.log.Debug("data channel send", "err", err)
	}
}

// run is the sender goroutine; it ends with ctx (the participant's life).
func (s *chunkSender) run(ctx context.Context) {
	defer func() {
		for _, r := range s.ranges {
			_ = r.it.Close()
		}
		s.env.activeRanges.Add(-int64(len(s.ranges)))
		s.ranges = nil
		s.env.metrics.AddBufferedBytes(-s.reported)
		s.reported = 0
	}()
	idle := time.NewTicker(idleRefresh)
	defer idle.Stop()
	for ctx.Err() == nil {
		if len(s.ranges) == 0 {
			var tick <-chan time.Time
			if s.reported != 0 {
				tick = idle.C
			}
			select {
			case m := <-s.cmds:
				s.handle(ctx, m)
			case <-tick:
				s.refreshGauge()
			case <-ctx.Done():
			}
			continue
		}
		s.drainCommands(ctx)
		if !s.waitWindow(ctx) || len(s.ranges) == 0 {
			continue
		}
		s.sendNext()
	}
}

// drainCommands handles the commands already queued, without blocking.
func (s *chunkSender) drainCommands(ctx context.Context) {
	for {
		select {
		case m := <-s.cmds:
			s.handle(ctx, m)
		default:
			return
		}
	}
}

// waitWindow blocks while bufferedAmount exceeds the window, still handling
// commands. It returns false if ctx ended or no range is left.
func (s *chunkSender) waitWindow(ctx context.Context) bool {
	window := uint64(s.env.cfg.SendWindow)
	for s.dc.BufferedAmount() > window {
		select {
		case <-s.low:
		case m := <-s.cmds:
			s.handle(ctx, m)
			if len(s.ranges) == 0 {
				return false
			}
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// sendNext sends the next chunk of the next range in round-robin order.
func (s *chunkSender) sendNext() {
	if s.next >= len(s.ranges) {
		s.next = 0
	}
	r := s.ranges[s.next]
	if !r.it.Next() {
		err := r.it.Err()
		s.remove(r)
		if err != nil {
			s.p.log.Warn("read chunks", "track", r.track, "err", err)
			s.reply(chunkproto.Error{ID: r.id, Code: chunkproto.CodeUnavailable, Message: "store read failed"})
			return
		}
		if r.next != r.to {
			s.reply(chunkproto.Error{ID: r.id, Code: chunkproto.CodeInternal, Message: "store ended the range early"})
			return
		}
		s.reply(chunkproto.Done{ID: r.id})
		return
	}
	c := r.it.Chunk()
	msg, err := chunkproto.EncodeChunk(r.track, c.Seq, c.Data)
	if err != nil || c.Seq != r.next {
		s.remove(r)
		s.p.log.Error("bad chunk from store", "track", r.track, "seq", c.Seq, "want", r.next, "err", err)
		s.reply(chunkproto.Error{ID: r.id, Code: chunkproto.CodeInternal, Message: "bad chunk in store"})
		return
	}
	r.next++
	s.env.copies.Note(r.track, c.Seq, s.p.id, time.Now())
	if err := s.dc.Send(msg); err != nil {
		s.p.log.Debug("data channel send", "err", err)
		s.p.fail(websocket.StatusInternalError, "data channel send failed")
		return
	}
	s.env.metrics.ChunkSent(len(c.Data))
	s.refreshGauge()
	s.next++
}

func (s *chunkSender) refreshGauge() {
	cur := int64(s.dc.BufferedAmount())
	if d := cur - s.reported; d != 0 {
		s.env.metrics.AddBufferedBytes(d)
		s.reported = cur
	}
}

// handle applies one message from the peer.
func (s *chunkSender) handle(ctx context.Context, m chunkproto.Message) {
	switch m := m.(type) {
	case chunkproto.Request:
		s.start(ctx, m)
	case chunkproto.Cancel:
		for _, r := range s.ranges {
			if r.id == m.ID {
				s.remove(r)
				break
			}
		}
	case chunkproto.Have:
		s.reply(chunkproto.HaveReply{Track: m.Track, OK: s.env.shapes.known(ctx, m.Track)})
	default:
		// done, error and have_reply answer requests the hub never makes.
	}
}

// start validates a request and adds its range, replacing a range of the
// same track.
func (s *chunkSender) start(ctx context.Context, req chunkproto.Request) {
	fail := func(code, msg string) {
		s.reply(chunkproto.Error{ID: req.ID, Code: code, Message: truncate(msg)})
	}
	if s.env.draining.Load() {
		fail(chunkproto.CodeUnavailable, "the hub is shutting down")
		return
	}
	if err := req.Validate(); err != nil {
		if errors.Is(err, chunkproto.ErrEmptyRange) {
			fail(chunkproto.CodeInvalidRange, err.Error())
		} else {
			fail(chunkproto.CodeBadRequest, err.Error())
		}
		return
	}
	for _, r := range s.ranges {
		if r.id == req.ID {
			fail(chunkproto.CodeDuplicateID, fmt.Sprintf("request %d is in flight", req.ID))
			return
		}
	}
	var replaced *chunkRange
	for _, r := range s.ranges {
		if r.track == req.Track {
			replaced = r
		}
	}
	if replaced == nil && len(s.ranges) >= s.env.cfg.MaxRequests {
		fail(chunkproto.CodeTooManyRequests, fmt.Sprintf("at most %d ranges in flight", s.env.cfg.MaxRequests))
		return
	}
	shape, err := s.env.shapes.get(ctx, req.Track)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			fail(chunkproto.CodeNotFound, "unknown track "+req.Track)
		case errors.Is(err, store.ErrLimited): // the peer's share of the store's work (package origin)
			fail(chunkproto.CodeTooManyRequests, err.Error())
		default:
			s.p.log.Warn("request: manifest", "track", req.Track, "err", err)
			fail(chunkproto.CodeUnavailable, "track store unavailable")
		}
		return
	}
	if err := store.CheckRange(req.Track, shape.chunks, req.From, req.To); err != nil {
		fail(chunkproto.CodeInvalidRange, fmt.Sprintf("range [%d,%d) outside [0,%d)", req.From, req.To, shape.chunks))
		return
	}
	if replaced != nil {
		s.remove(replaced)
	}
	if req.FirstCopy {
		req.From, req.To = s.env.copies.Claim(req.Track, req.From, req.To, s.p.id, s.env.connected, time.Now())
		if req.From >= req.To {
			s.env.metrics.FirstCopySkipped()
			s.reply(chunkproto.Done{ID: req.ID}) // every chunk went to other peers
			return
		}
	}
	it, err := s.env.st.ReadChunks(ctx, req.Track, req.From, req.To)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrInvalid):
			fail(chunkproto.CodeInvalidRange, err.Error())
		case errors.Is(err, store.ErrNotFound):
			fail(chunkproto.CodeNotFound, "unknown track "+req.Track)
		case errors.Is(err, store.ErrLimited):
			fail(chunkproto.CodeTooManyRequests, err.Error())
		default:
			s.p.log.Warn("request: read chunks", "track", req.Track, "err", err)
			fail(chunkproto.CodeUnavailable, "track store unavailable")
		}
		return
	}
	s.ranges = append(s.ranges, &chunkRange{id: req.ID, track: req.Track, next: req.From, to: req.To, it: it})
	s.env.activeRanges.Add(1)
	s.grantPlayback(req.Track, shape.size)
}

// grantPlayback grants the p2p byte budgets of a playback on the first
// request of a track in this connection (every playback that is not cached
// starts with the hub). Peers fetch a track from a seeder they are already
// connected to (have/request on an existing pair) without a tracker lookup,
// so the pairs the tracker brokers do not cover every p2p byte: the
// requester may receive the track from peers (download budget) and each
// peer it is paired with now may upload it (upload budget). A peer that
// requests chunks of many tracks only gains budgets bounded by
// maxGrantedTracks, metrics.Limits.MaxBudget and the byte rate cap.
func (s *chunkSender) grantPlayback(track string, size int64) {
	if _, done := s.granted[track]; done || len(s.granted) >= maxGrantedTracks {
		return
	}
	if s.granted == nil {
		s.granted = make(map[string]struct{})
	}
	s.granted[track] = struct{}{}
	s.p.peerMetrics.GrantDownload(size)
	for _, partner := range s.env.partnersOf(s.p) {
		partner.peerMetrics.GrantUpload(size)
	}
}

func (s *chunkSender) remove(r *chunkRange) {
	for i, x := range s.ranges {
		if x == r {
			_ = r.it.Close()
			s.env.activeRanges.Add(-1)
			s.ranges = append(s.ranges[:i], s.ranges[i+1:]...)
			if s.next > i {
				s.next--
			}
			return
		}
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

package peer

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pion/webrtc/v4"

	"github.com/ztream/ztream/chunkproto"
)

// Flow control on peer DataChannels (PROTOCOL.md §4.3).
const (
	sendWindow   = 256 << 10
	lowThreshold = sendWindow / 2
)

// maxInterest bounds the tracks one remote peer subscribes to (have) on
// one channel; more are answered but get no holding updates.
const maxInterest = 32

// maxInboundRate bounds the have, holding and request messages (per second,
// and the burst) accepted from one remote peer; more are dropped (a request
// gets error rate_limited).
const maxInboundRate = 50

// rangeSink receives what arrives for ranges a session requested.
type rangeSink interface {
	// chunk delivers one chunk of the sink's track; data is owned by the sink.
	chunk(ep *endpoint, seq int, data []byte)
	// rangeEnd reports the end of range id: code is "" for done.
	rangeEnd(ep *endpoint, id uint32, code string)
	// haveReply reports a have_reply (decoded, not yet checked against
	// the manifest).
	haveReply(ep *endpoint, m chunkproto.HaveReply)
	// holding reports a holding update of the remote for the sink's track.
	holding(ep *endpoint, m chunkproto.Holding)
	// badMessage reports a malformed message from the remote peer.
	badMessage(ep *endpoint)
}

// outRange is a range this side requested.
type outRange struct {
	id    uint32
	track string
	sink  rangeSink
}

// serveJob is a range this side serves.
type serveJob struct {
	req  chunkproto.Request
	stop chan struct{}
	once sync.Once
}

func (j *serveJob) cancel() { j.once.Do(func() { close(j.stop) }) }

// endpoint speaks chunkproto on one "chunks" DataChannel, as requester and
// (with peers) as server.
type endpoint struct {
	p      *Peer
	dc     *webrtc.DataChannel
	remote string // signaling.HubID or the peer id
	pair   *pair  // nil for the hub
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	nextID   uint32
	byTrack  map[string]*outRange // the range in flight per track
	byID     map[uint32]*outRange
	haves    map[string]rangeSink // sessions that asked have, per track: they get holding updates too
	interest map[string]struct{}  // tracks the remote asked have for: it gets our holding updates
	inbound  *rate.Limiter        // have, holding and request messages from the remote
	serving  map[uint32]*serveJob
	servedBy map[string]uint32 // track → serving id
	lowSig   chan struct{}
}

func newEndpoint(p *Peer, dc *webrtc.DataChannel, remote string, pr *pair) *endpoint {
	ep := &endpoint{
		p: p, dc: dc, remote: remote, pair: pr, closed: make(chan struct{}),
		byTrack: make(map[string]*outRange), byID: make(map[uint32]*outRange),
		haves: make(map[string]rangeSink), interest: make(map[string]struct{}), serving: make(map[uint32]*serveJob),
		inbound:  rate.NewLimiter(maxInboundRate, maxInboundRate),
		servedBy: make(map[string]uint32), lowSig: make(chan struct{}),
	}
	dc.SetBufferedAmountLowThreshold(lowThreshold)
	dc.OnBufferedAmountLow(func() {
		ep.mu.Lock()
		close(ep.lowSig)
		ep.lowSig = make(chan struct{})
		ep.mu.Unlock()
	})
	dc.OnMessage(ep.onMessage)
	dc.OnClose(ep.shutdown)
	return ep
}

func (ep *endpoint) isHub() bool { return ep.pair == nil }

// shutdown marks the endpoint closed and stops everything it serves.
func (ep *endpoint) shutdown() {
	ep.once.Do(func() {
		close(ep.closed)
		ep.mu.Lock()
		for _, j := range ep.serving {
			j.cancel()
		}
		ep.mu.Unlock()
	})
}

func (ep *endpoint) isClosed() bool {
	select {
	case <-ep.closed:
		return true
	default:
		return false
	}
}

func (ep *endpoint) servingCount() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return len(ep.serving)
}

func (ep *endpoint) requestCount() int {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return len(ep.byID)
}

func (ep *endpoint) sendMsg(m chunkproto.Message) error {
	data, err := chunkproto.EncodeMessage(m)
	if err != nil {
		return err
	}
	return ep.dc.SendText(string(data))
}

// request asks for [from, to) of track (as first copies when firstCopy, to
// the hub); it replaces the range in flight for track, if any. It returns
// the request id.
func (ep *endpoint) request(track string, from, to int, firstCopy bool, sink rangeSink) (uint32, error) {
	ep.mu.Lock()
	ep.nextID++
	if ep.nextID == 0 {
		ep.nextID = 1
	}
	r := &outRange{id: ep.nextID, track: track, sink: sink}
	if old := ep.byTrack[track]; old != nil {
		delete(ep.byID, old.id)
	}
	ep.byTrack[track] = r
	ep.byID[r.id] = r
	ep.mu.Unlock()
	if ep.pair != nil {
		ep.pair.touch()
	}
	return r.id, ep.sendMsg(chunkproto.Request{ID: r.id, Track: track, From: from, To: to, FirstCopy: firstCopy})
}

// cancel stops range id and forgets track's sink.
func (ep *endpoint) cancel(track string, id uint32) {
	ep.mu.Lock()
	r := ep.byID[id]
	delete(ep.byID, id)
	if r != nil && ep.byTrack[track] == r {
		delete(ep.byTrack, track)
	}
	ep.mu.Unlock()
	if r != nil {
		_ = ep.sendMsg(chunkproto.Cancel{ID: id})
	}
}

// forget drops every sink of track (the session ended).
func (ep *endpoint) forget(track string) {
	ep.mu.Lock()
	if r := ep.byTrack[track]; r != nil {
		delete(ep.byID, r.id)
		delete(ep.byTrack, track)
	}
	delete(ep.haves, track)
	ep.mu.Unlock()
}

// have asks what the remote holds of track; the reply and the remote's later
// holding updates go to sink until forget.
func (ep *endpoint) have(track string, sink rangeSink) error {
	ep.mu.Lock()
	ep.haves[track] = sink
	ep.mu.Unlock()
	return ep.sendMsg(chunkproto.Have{Track: track})
}

func (ep *endpoint) onMessage(msg webrtc.DataChannelMessage) {
	if !msg.IsString {
		c, err := chunkproto.DecodeChunk(msg.Data)
		if err != nil {
			if !ep.isHub() {
				ep.badMessage()
			}
			return
		}
		ep.mu.Lock()
		r := ep.byTrack[c.Track]
		ep.mu.Unlock()
		if r == nil {
			return // canceled or unknown: drop
		}
		r.sink.chunk(ep, c.Seq, append([]byte(nil), c.Data...))
		return
	}
	m, err := chunkproto.DecodeMessage(msg.Data)
	if err != nil {
		_ = ep.sendMsg(chunkproto.Error{Code: chunkproto.CodeBadRequest, Message: "malformed message"})
		return
	}
	switch m := m.(type) {
	case chunkproto.Done:
		ep.endRange(m.ID, "")
	case chunkproto.Error:
		if m.ID != 0 {
			ep.endRange(m.ID, m.Code)
		}
	case chunkproto.HaveReply:
		ep.mu.Lock()
		s := ep.haves[m.Track]
		ep.mu.Unlock()
		if s != nil {
			s.haveReply(ep, m)
		}
	case chunkproto.Holding:
		if !ep.inbound.Allow() {
			ep.p.stats.dropped.Add(1)
			return
		}
		ep.mu.Lock()
		s := ep.haves[m.Track]
		ep.mu.Unlock()
		if s != nil {
			s.holding(ep, m)
		}
	case chunkproto.Have:
		if ep.isHub() || !ep.inbound.Allow() {
			_ = ep.sendMsg(chunkproto.HaveReply{Track: m.Track})
			return
		}
		_ = ep.sendMsg(ep.p.haveReply(m.Track, ep.remote))
		ep.mu.Lock()
		if len(ep.interest) < maxInterest {
			ep.interest[m.Track] = struct{}{}
		}
		ep.mu.Unlock()
	case chunkproto.Request:
		if !ep.isHub() && !ep.inbound.Allow() {
			ep.p.stats.dropped.Add(1)
			_ = ep.sendMsg(chunkproto.Error{ID: m.ID, Code: chunkproto.CodeRateLimited, Message: "too many messages"})
			return
		}
		ep.serve(m)
	case chunkproto.Cancel:
		ep.mu.Lock()
		if j := ep.serving[m.ID]; j != nil {
			j.cancel()
			delete(ep.serving, m.ID)
			if ep.servedBy[j.req.Track] == m.ID {
				delete(ep.servedBy, j.req.Track)
			}
		}
		ep.mu.Unlock()
	}
}

// pushHolding sends h to the remote if it asked have for h's track.
func (ep *endpoint) pushHolding(h chunkproto.Holding) {
	ep.mu.Lock()
	_, want := ep.interest[h.Track]
	ep.mu.Unlock()
	if want {
		_ = ep.sendMsg(h)
	}
}

// badMessage tells every session with a range in flight here that the
// remote sent a malformed message.
func (ep *endpoint) badMessage() {
	ep.p.stats.badMessages.Add(1)
	ep.mu.Lock()
	sinks := make([]rangeSink, 0, len(ep.byTrack))
	for _, r := range ep.byTrack {
		sinks = append(sinks, r.sink)
	}
	ep.mu.Unlock()
	for _, s := range sinks {
		s.badMessage(ep)
	}
}

func (ep *endpoint) endRange(id uint32, code string) {
	ep.mu.Lock()
	r := ep.byID[id]
	delete(ep.byID, id)
	if r != nil && ep.byTrack[r.track] == r {
		delete(ep.byTrack, r.track)
	}
	ep.mu.Unlock()
	if r != nil {
		r.sink.rangeEnd(ep, id, code)
	}
}

// serve starts serving a request from the remote peer.
func (ep *endpoint) serve(req chunkproto.Request) {
	fail := func(code, msg string) {
		_ = ep.sendMsg(chunkproto.Error{ID: req.ID, Code: code, Message: msg})
	}
	if ep.isHub() {
		fail(chunkproto.CodeBadRequest, "the hub does not request chunks")
		return
	}
	ct := ep.p.sourceOf(req.Track)
	if ct == nil {
		fail(chunkproto.CodeNotFound, "track not held")
		return
	}
	if req.To > ct.Len() {
		fail(chunkproto.CodeInvalidRange, "range outside the track")
		return
	}
	if !ep.p.acquireSlot(ep.remote, "", false) {
		ep.p.stats.refused.Add(1)
		fail(chunkproto.CodeNotFound, "upload cap reached")
		return
	}
	job := &serveJob{req: req, stop: make(chan struct{})}
	ep.mu.Lock()
	if _, dup := ep.serving[req.ID]; dup {
		ep.mu.Unlock()
		fail(chunkproto.CodeDuplicateID, "id in flight")
		return
	}
	if oldID, ok := ep.servedBy[req.Track]; ok {
		if old := ep.serving[oldID]; old != nil {
			old.cancel()
		}
		delete(ep.serving, oldID)
	}
	if len(ep.serving) >= chunkproto.MaxRequests {
		ep.mu.Unlock()
		fail(chunkproto.CodeTooManyRequests, "too many ranges in flight")
		return
	}
	ep.serving[req.ID] = job
	ep.servedBy[req.Track] = req.ID
	ep.mu.Unlock()
	ep.p.wg.Add(1)
	go ep.run(job, ct)
}

// run sends the chunks of job with backpressure, then done.
func (ep *endpoint) run(job *serveJob, ct chunkSource) {
	defer ep.p.wg.Done()
	req := job.req
	finished := false
	defer func() {
		ep.mu.Lock()
		if ep.serving[req.ID] == job {
			delete(ep.serving, req.ID)
			if ep.servedBy[req.Track] == req.ID {
				delete(ep.servedBy, req.Track)
			}
		}
		idle := len(ep.serving) == 0
		ep.mu.Unlock()
		ep.p.touchSlot(ep.remote)
		if finished && idle && req.To == ct.Len() {
			// The leecher got the end of the track: free the upload slot.
			ep.p.releaseSlot(ep.remote)
		}
	}()
	if ep.p.cfg.Fault == FaultSilent {
		// Accept the request, send nothing: the leecher must time out.
		ep.p.stats.faultsSent.Add(int64(req.To - req.From))
		select {
		case <-job.stop:
		case <-ep.closed:
		case <-ep.p.ctx.Done():
		}
		return
	}
	buf := make([]byte, 0, chunkproto.HeaderSize+chunkproto.MaxPayload)
	for seq := req.From; seq < req.To; seq++ {
		if _, held := ct.Chunk(seq); !held {
			continue // a partial holder sends what it holds (§8.1)
		}
		if ep.p.cfg.Fault == FaultLiar && seq%2 == 1 {
			ep.p.stats.faultsSent.Add(1)
			continue
		}
		if !ep.waitWindow(job) {
			return
		}
		payload, faulty := faultyPayload(ep.p.cfg.Fault, ct, seq)
		var msg []byte
		var err error
		if len(payload) > chunkproto.MaxPayload {
			// AppendChunk refuses it: build the oversize message by hand.
			msg, err = chunkproto.AppendChunk(buf[:0], req.Track, seq, payload[:1])
			msg = append(msg[:chunkproto.HeaderSize], payload...)
		} else {
			msg, err = chunkproto.AppendChunk(buf[:0], req.Track, seq, payload)
		}
		if err != nil {
			_ = ep.sendMsg(chunkproto.Error{ID: req.ID, Code: chunkproto.CodeInternal, Message: "encode chunk"})
			return
		}
		if err := ep.dc.Send(msg); err != nil {
			return
		}
		if faulty {
			ep.p.stats.faultsSent.Add(1)
		}
		ep.p.stats.uploaded.Add(int64(len(payload)))
	}
	select {
	case <-job.stop:
		return
	default:
	}
	finished = ep.sendMsg(chunkproto.Done{ID: req.ID}) == nil
}

// waitWindow waits until the DataChannel's buffered amount is within the
// window; false when the job or the endpoint stops.
func (ep *endpoint) waitWindow(job *serveJob) bool {
	for {
		select {
		case <-job.stop:
			return false
		case <-ep.closed:
			return false
		case <-ep.p.ctx.Done():
			return false
		default:
		}
		ep.mu.Lock()
		low := ep.lowSig
		ep.mu.Unlock()
		if ep.dc.BufferedAmount() <= sendWindow {
			return true
		}
		t := time.NewTimer(100 * time.Millisecond) // safety net for a missed edge
		select {
		case <-low:
		case <-t.C:
		case <-job.stop:
		case <-ep.closed:
		case <-ep.p.ctx.Done():
		}
		t.Stop()
	}
}

// waitOpen waits until pr's DataChannel opens; false and why on close,
// timeout or ctx end.
func waitOpen(ctx context.Context, pr *pair, timeout time.Duration) (bool, pairEnd) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-pr.open:
		return true, 0
	case <-pr.closed:
		return false, pairEnd(pr.why.Load())
	case <-t.C:
		return false, endTimeout
	case <-ctx.Done():
		return false, endAbandoned
	}
}

// Package cluster joins hubs into one swarm through NATS. Each hub puts the
// holdings of its peers (who holds which chunks of which track) in a
// JetStream key-value bucket and watches it, so that its tracker sees every
// hub's holders in memory. Hubs say they are alive on core NATS every
// Config.Heartbeat (core subjects keep working while JetStream elects a new
// leader after a NATS node died); a hub silent for Config.HubTimeout is dead
// and its peers are forgotten, and a hub that leaves says bye. Hubs relay
// what crosses them (can_upload asks, pairings, signals, unpairs) on subject
// ztream.hub.<hub id> of the hub holding the peer concerned. Without NATS a
// hub goes on alone with its own peers and rejoins when NATS is back.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// holdersBucket is the key-value bucket of the holdings.
const holdersBucket = "ztream_holders"

// subjectPrefix + hub id is where a hub receives Messages.
const subjectPrefix = "ztream.hub."

// alivePrefix + hub id carries a hub's heartbeats on core NATS (its run id),
// and its byeMessage when it leaves.
const alivePrefix = "ztream.alive."

// byeMessage on a hub's alive subject says it leaves.
const byeMessage = "bye"

// Node is the hub a Cluster serves. The Cluster calls it from its own
// goroutines; no method may block.
type Node interface {
	// RemoteHold: peer, connected to another hub with upload cap
	// uploadCap, holds chunks of track (bits nil: all of them).
	RemoteHold(peer string, uploadCap int, track string, chunks int, bits []byte)
	// RemoteUnhold: peer no longer holds track.
	RemoteUnhold(peer, track string)
	// RemoteLeave: peer left, or its hub died.
	RemoteLeave(peer string)
	// HubDown: hub died or left; pairs with its peers are over.
	HubDown(hub string)
	// Ask handles a KindAsk; it calls reply once, within its own timeout
	// (the asking hub stops waiting after Config.AskTimeout).
	Ask(m Message, reply func(ok bool))
	// Pair handles a KindPair and reports whether the pair was made.
	Pair(m Message) bool
	// Deliver handles a KindSignal, KindUnpair, KindUploadDone or KindReport.
	Deliver(m Message)
}

// State is a snapshot of the hub's view of the cluster.
type State struct {
	HubID     string `json:"hub_id"`
	Connected bool   `json:"nats_connected"`
	// Synced: the buckets are watched and this hub's holdings are in them.
	Synced bool `json:"synced"`
	// Server is the NATS server connected to.
	Server string `json:"nats_server,omitempty"`
	// RTT is the last measured round trip to the NATS server.
	RTT time.Duration `json:"nats_rtt_ns"`
	// Hubs lists the other hubs alive.
	Hubs []string `json:"hubs"`
	// RemotePeers counts the other hubs' peers that hold something, and
	// RemoteHoldings their (peer, track) holdings.
	RemotePeers    int `json:"remote_peers"`
	RemoteHoldings int `json:"remote_holdings"`
	// Dropped counts messages and entries refused as invalid.
	Dropped int64 `json:"dropped"`
}

// Cluster is one hub's membership. Create it with New, Start it with the
// hub, Close it before the hub.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	node Node
	nc   *nats.Conn
	sub  *nats.Subscription
	// alive receives the other hubs' core heartbeats.
	alive *nats.Subscription

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// resync wakes the session loop after a reconnection.
	resync chan struct{}
	// joined passes the hubs that appeared to the session loop, which
	// reads their holdings.
	joined chan string
	// asks bounds the asks in flight to other hubs.
	asks chan struct{}

	// runID tells this run of the hub from an earlier one with the same
	// id (in its heartbeats).
	runID string
	// connectErrs keeps the connection errors logged recently.
	connectErrs errorLog

	rtt     atomic.Int64
	synced  atomic.Bool
	dropped atomic.Int64

	local *localHoldings
	view  *remoteView
}

// New checks cfg and returns a Cluster that is not connected yet.
func New(cfg Config) (*Cluster, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Cluster{
		cfg:    cfg,
		log:    cfg.Logger,
		resync: make(chan struct{}, 1),
		joined: make(chan string, 64),
		asks:   make(chan struct{}, cfg.MaxPendingAsks),
		runID:  newRunID(),
		local:  newLocalHoldings(cfg.HubID),
		view:   newRemoteView(cfg.HubID, cfg.MaxRemotePeers),
	}, nil
}

// HubID returns this hub's id.
func (c *Cluster) HubID() string { return c.cfg.HubID }

// Start connects to NATS (retrying in the background while it is
// unreachable: the hub serves its own peers meanwhile) and begins serving
// node. It fails only on a configuration NATS refuses outright.
func (c *Cluster) Start(node Node) error {
	c.node = node
	c.ctx, c.cancel = context.WithCancel(context.Background())
	opts := []nats.Option{
		nats.Name("ztream hub " + c.cfg.HubID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: Close
				c.log.Warn("nats disconnected: serving this hub's peers alone", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			c.log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
			c.wake()
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			c.log.Info("nats connected", "server", nc.ConnectedUrlRedacted())
			c.wake()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.log.Warn("nats", "err", err)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if c.connectErrs.note(err, time.Now()) {
				c.log.Warn("nats unreachable: serving this hub's peers alone; retrying", "err", err)
			}
		}),
	}
	switch {
	case c.cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.cfg.CredsFile))
	case c.cfg.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.cfg.NKeyFile)
		if err != nil {
			return fmt.Errorf("cluster: nkey seed %s: %w", c.cfg.NKeyFile, err)
		}
		opts = append(opts, o)
	case c.cfg.User != "" || c.cfg.Password != "":
		opts = append(opts, nats.UserInfo(c.cfg.User, c.cfg.Password))
	case c.cfg.Token != "":
		opts = append(opts, nats.Token(c.cfg.Token))
	}
	if c.cfg.TLS != nil {
		opts = append(opts, nats.Secure(c.cfg.TLS))
	}
	nc, err := nats.Connect(c.cfg.URLs, opts...)
	if err != nil {
		return fmt.Errorf("cluster: nats %s: %w", c.cfg.URLs, err)
	}
	c.nc = nc
	sub, err := nc.Subscribe(subjectPrefix+c.cfg.HubID, c.receive)
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	// A flood from a broken hub is dropped (and logged), not queued without
	// bound.
	if err := sub.SetPendingLimits(8192, 64<<20); err != nil {
		nc.Close()
		return fmt.Errorf("cluster: subscription limits: %w", err)
	}
	c.sub = sub
	alive, err := nc.Subscribe(alivePrefix+"*", c.heard)
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	if err := alive.SetPendingLimits(4096, 1<<20); err != nil {
		nc.Close()
		return fmt.Errorf("cluster: subscription limits: %w", err)
	}
	c.alive = alive
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.run()
	}()
	go func() {
		defer c.wg.Done()
		c.heartbeats()
	}()
	return nil
}

// heartbeats says this hub is alive and forgets the hubs that fell silent,
// every Config.Heartbeat until Close, whatever JetStream is doing.
func (c *Cluster) heartbeats() {
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		c.beat()
		c.sweep()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wake asks the session loop to set up again (connected or reconnected).
func (c *Cluster) wake() {
	select {
	case c.resync <- struct{}{}:
	default:
	}
}

// Close leaves the cluster: this hub's heartbeat and holdings are removed
// (if NATS is reachable), so the others forget its peers at once.
func (c *Cluster) Close() error {
	if c.cancel == nil {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	if c.nc.IsConnected() {
		if err := c.nc.Publish(alivePrefix+c.cfg.HubID, []byte(byeMessage)); err != nil {
			c.log.Debug("bye", "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.leave(ctx); err != nil {
			c.log.Warn("leaving the cluster", "err", err)
		}
	}
	c.nc.Close()
	return nil
}

// leave deletes this hub's holdings.
func (c *Cluster) leave(ctx context.Context) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, holdersBucket)
	if err != nil {
		return err
	}
	// The departures not flushed yet, then whatever is left.
	if err := c.local.flush(ctx, kv); err != nil {
		return err
	}
	for _, key := range c.local.keys() {
		if err := kv.Delete(ctx, key); err != nil {
			return err
		}
	}
	return c.nc.FlushWithContext(ctx)
}

// State returns a snapshot of the hub's view of the cluster.
func (c *Cluster) State() State {
	s := State{HubID: c.cfg.HubID, Synced: c.synced.Load(), RTT: time.Duration(c.rtt.Load()), Dropped: c.dropped.Load()}
	if c.nc != nil {
		s.Connected = c.nc.IsConnected()
		if s.Connected {
			s.Server = c.nc.ConnectedUrlRedacted()
		}
	}
	s.Hubs, s.RemotePeers, s.RemoteHoldings = c.view.summary()
	return s
}

// HubOf returns the hub of a peer of another hub that holds something.
func (c *Cluster) HubOf(peer string) (string, bool) { return c.view.hubOf(peer) }

// Hold records that local peer (upload cap uploadCap) holds chunks of track
// (bits nil: all); Unhold that it holds nothing of it; Leave that it left.
// The bucket gets the change within a flush interval.
func (c *Cluster) Hold(peer string, uploadCap int, track string, chunks int, bits []byte) {
	if uploadCap < 1 {
		return
	}
	v, _ := json.Marshal(holding{UploadCap: uploadCap, Chunks: chunks, Bits: bits})
	c.local.put(peer, track, v)
}

// Unhold records that local peer holds nothing of track.
func (c *Cluster) Unhold(peer, track string) { c.local.remove(peer, track) }

// Leave records that local peer left: its holdings go at the next flush.
func (c *Cluster) Leave(peer string) { c.local.leave(peer) }

// AskUpload relays a can_upload ask to hub; it blocks for the answer (at
// most Config.AskTimeout). Too many asks in flight count as a no.
func (c *Cluster) AskUpload(hub string, m Message) bool {
	select {
	case c.asks <- struct{}{}:
		defer func() { <-c.asks }()
	default:
		return false
	}
	m.Kind = KindAsk
	return c.request(hub, m, c.cfg.AskTimeout)
}

// PairWith asks hub to pair its seeder (after its yes); it blocks for the
// answer (at most Config.RequestTimeout).
func (c *Cluster) PairWith(hub string, m Message) bool {
	m.Kind = KindPair
	return c.request(hub, m, c.cfg.RequestTimeout)
}

func (c *Cluster) request(hub string, m Message, timeout time.Duration) bool {
	m.From = c.cfg.HubID
	data, err := json.Marshal(m)
	if err != nil {
		return false
	}
	reply, err := c.nc.Request(subjectPrefix+hub, data, timeout)
	if err != nil {
		c.log.Debug("request to hub", "hub", hub, "kind", m.Kind, "err", err)
		return false
	}
	var a answer
	if len(reply.Data) > 64 || json.Unmarshal(reply.Data, &a) != nil {
		return false
	}
	return a.OK
}

// Send relays a KindSignal, KindUnpair or KindUploadDone message to hub.
// Messages to one hub arrive in the order sent.
func (c *Cluster) Send(hub string, m Message) {
	m.From = c.cfg.HubID
	data, err := json.Marshal(m)
	if err != nil {
		return
	}
	if err := c.nc.Publish(subjectPrefix+hub, data); err != nil {
		c.log.Debug("send to hub", "hub", hub, "kind", m.Kind, "err", err)
	}
}

// heard handles a heartbeat or bye of another hub (the subscription's
// goroutine). A hub heard for the first time is passed to the session loop,
// which reads its holdings: those put before this hub knew it were ignored.
func (c *Cluster) heard(msg *nats.Msg) {
	hub := strings.TrimPrefix(msg.Subject, alivePrefix)
	if hub == c.cfg.HubID || !ValidHubID(hub) {
		return
	}
	if string(msg.Data) == byeMessage {
		if c.view.known(hub) {
			c.hubDown(hub)
		}
		return
	}
	run := string(msg.Data)
	if len(run) > maxIDLen {
		c.dropped.Add(1)
		return
	}
	isNew, restarted := c.view.heartbeat(hub, run, time.Now())
	if restarted {
		// Restarted within HubTimeout: its previous run's peers and pairs
		// are gone.
		c.hubDown(hub)
		isNew, _ = c.view.heartbeat(hub, run, time.Now())
	}
	if !isNew {
		return
	}
	c.log.Info("hub joined", "hub", hub)
	select {
	case c.joined <- hub:
	default:
		c.wake() // too many at once: read everything again
	}
}

// receive handles one message on this hub's subject (the subscription's
// goroutine: in order).
func (c *Cluster) receive(msg *nats.Msg) {
	m, err := decodeMessage(msg.Data)
	if err == nil && !c.view.alive(m.From) {
		err = fmt.Errorf("from %q, not a live hub: %w", m.From, errBadMessage)
	}
	if err != nil {
		c.dropped.Add(1)
		c.log.Debug("message refused", "err", err)
		if msg.Reply != "" {
			_ = msg.Respond([]byte(`{"ok":false}`))
		}
		return
	}
	respond := func(ok bool) {
		if msg.Reply == "" {
			return
		}
		b, _ := json.Marshal(answer{OK: ok})
		if err := msg.Respond(b); err != nil {
			c.log.Debug("answer", "err", err)
		}
	}
	switch m.Kind {
	case KindAsk:
		var once sync.Once
		c.node.Ask(m, func(ok bool) { once.Do(func() { respond(ok) }) })
	case KindPair:
		respond(c.node.Pair(m))
	default:
		c.node.Deliver(m)
	}
}

// run keeps a session with the buckets while the Cluster is open: it sets
// one up whenever NATS is connected, and again after each reconnection.
func (c *Cluster) run() {
	for c.ctx.Err() == nil {
		if c.nc.IsConnected() {
			err := c.session()
			c.synced.Store(false)
			if err != nil && c.ctx.Err() == nil {
				c.log.Warn("cluster session ended", "err", err)
			}
		}
		t := time.NewTimer(c.cfg.Heartbeat)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-c.resync:
			t.Stop()
		case <-t.C:
		}
	}
}

// sweep forgets the hubs that fell silent, with their peers.
func (c *Cluster) sweep() {
	for _, hub := range c.view.expire(time.Now(), c.cfg.HubTimeout) {
		c.hubDown(hub)
	}
}

// hubDown tells the node that hub and its peers are gone.
func (c *Cluster) hubDown(hub string) {
	peers := c.view.dropHub(hub)
	c.log.Info("hub gone", "hub", hub, "peers", len(peers))
	for _, p := range peers {
		c.node.RemoteLeave(p)
	}
	c.node.HubDown(hub)
}

// bucket binds a key-value bucket, creating it if it does not exist.
func (c *Cluster) bucket(js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// flushEvery is how often changed holdings are written to the bucket.
const flushEvery = 100 * time.Millisecond

// session binds the bucket, puts this hub's holdings, and feeds the node
// from the watch (and the heartbeats) until NATS reconnects (a new session
// then resynchronizes), an error or Close.
func (c *Cluster) session() error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return fmt.Errorf("cluster: jetstream: %w", err)
	}
	replicas := c.cfg.Replicas
	if replicas <= 0 {
		replicas = 1
		if c.nc.ConnectedClusterName() != "" {
			replicas = 3
		}
	}
	holders, err := c.bucket(js, jetstream.KeyValueConfig{
		Bucket: holdersBucket, Description: "ztream holders: <hub>.<peer>.<track>", Storage: jetstream.MemoryStorage,
		Replicas: replicas, TTL: c.cfg.HoldersMaxAge, MaxValueSize: maxHoldingBytes, MaxBytes: 1 << 30,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	// Entries of this hub that its peers no longer back (left while NATS
	// was away, or a previous run of this hub id) go; every live one is put
	// again (NATS may have lost them).
	if err := c.pruneOwn(ctx, holders); err != nil {
		return err
	}
	c.local.markAllDirty()
	mark := c.view.beginSync()
	kw, err := holders.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("cluster: watch holders: %w", err)
	}
	defer func() { _ = kw.Stop() }()
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	refresh := time.NewTicker(c.cfg.HoldersMaxAge / 2)
	defer refresh.Stop()
	initial := true
	for {
		select {
		case <-c.ctx.Done():
			return nil
		case <-c.resync:
			return nil
		case hub := <-c.joined:
			if err := c.catchUp(ctx, holders, hub, mark); err != nil {
				return err
			}
		case e, ok := <-kw.Updates():
			if !ok {
				return errors.New("cluster: holders watch ended")
			}
			if e == nil {
				if initial {
					initial = false
					for _, u := range c.view.endSync(mark) {
						if u.gone {
							c.node.RemoteLeave(u.peer)
						} else {
							c.node.RemoteUnhold(u.peer, u.track)
						}
					}
					c.synced.Store(true)
					c.log.Info("cluster synced", "hubs", len(c.view.liveHubs()))
				}
				continue
			}
			c.holderEntry(e, mark)
		case <-flush.C:
			if c.nc.IsConnected() {
				if err := c.local.flush(ctx, holders); err != nil && ctx.Err() == nil {
					c.log.Warn("writing holdings (retrying)", "err", err)
				}
			}
		case <-refresh.C:
			c.local.markAllDirty()
		}
	}
}

// beat publishes this hub's heartbeat and measures the round trip to NATS.
func (c *Cluster) beat() {
	if !c.nc.IsConnected() {
		return
	}
	if err := c.nc.Publish(alivePrefix+c.cfg.HubID, []byte(c.runID)); err != nil {
		c.log.Debug("heartbeat", "err", err)
	}
	if rtt, err := c.nc.RTT(); err == nil {
		c.rtt.Store(int64(rtt))
	}
}

// catchUp reads the holdings of a hub that just appeared.
func (c *Cluster) catchUp(ctx context.Context, kv jetstream.KeyValue, hub string, mark uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w, err := kv.Watch(ctx, hub+".>", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("cluster: read the holdings of hub %s: %w", hub, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: read the holdings of hub %s: %w", hub, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return nil
			}
			c.holderEntry(e, mark)
		}
	}
}

// holderEntry applies one entry (or deletion) of the holders bucket. An
// entry of a hub not heard yet is ignored: catchUp reads it when the hub is.
func (c *Cluster) holderEntry(e jetstream.KeyValueEntry, mark uint64) {
	hub, peer, track, err := parseHoldingKey(e.Key())
	if err != nil {
		c.dropped.Add(1)
		return
	}
	if hub == c.cfg.HubID {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		if gone := c.view.unhold(hub, peer, track); gone {
			c.node.RemoteLeave(peer)
		} else {
			c.node.RemoteUnhold(peer, track)
		}
		return
	}
	h, err := decodeHolding(e.Value())
	if err != nil {
		c.dropped.Add(1)
		c.log.Debug("holding refused", "key", e.Key(), "err", err)
		return
	}
	if !c.view.hold(hub, peer, track, mark) {
		return
	}
	c.node.RemoteHold(peer, h.UploadCap, track, h.Chunks, h.Bits)
}

// pruneOwn deletes the entries under this hub's id that no local peer backs.
func (c *Cluster) pruneOwn(ctx context.Context, kv jetstream.KeyValue) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	w, err := kv.Watch(ctx, c.cfg.HubID+".>", jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("cluster: list own holdings: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var stale []string
	for e := range w.Updates() {
		if e == nil {
			break
		}
		if !c.local.backs(e.Key()) {
			stale = append(stale, e.Key())
		}
	}
	for _, key := range stale {
		if err := kv.Delete(ctx, key); err != nil {
			return fmt.Errorf("cluster: delete stale holding %s: %w", key, err)
		}
	}
	if len(stale) > 0 {
		c.log.Info("stale holdings of this hub deleted", "n", len(stale))
	}
	return nil
}

// errorLog says which errors to log: a new one, or the same again after
// errorLogEvery (a retry loop repeats its error every half second).
type errorLog struct {
	mu   sync.Mutex
	last string
	at   time.Time
}

// errorLogEvery is how often the same error is logged again.
const errorLogEvery = time.Minute

// note records err at now and reports whether to log it.
func (l *errorLog) note(err error, now time.Time) bool {
	if err == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err.Error() == l.last && now.Sub(l.at) < errorLogEvery {
		return false
	}
	l.last, l.at = err.Error(), now
	return true
}

// newRunID returns a random id for one run of a hub.
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

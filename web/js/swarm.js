// @ts-check
// The peer algorithm of docs/PROTOCOL.md §8, as a pure function: a line-by-line
// port of Schedule in peer/sched.go (the normative version). Both run the
// shared scenario vectors in testdata/peer-algorithm/schedule.json.
//
// Times are media milliseconds. The timeline is given by chunk durations:
// chunk c starts at the sum of the durations before it.

/**
 * The scheduler's windows, in media milliseconds (see SchedConfig in
 * peer/sched.go for each one's meaning).
 * @typedef {object} SchedConfig
 * @property {number} start_ms how much audio the hub sends at start without P2P
 * @property {number} emergency_ms the emergency zone ahead of the playhead (halved while waiting)
 * @property {number} rescue_ms while playing (or at a late start), a missing chunk this close that the hub is not sending goes to the hub, even when a peer covers it
 * @property {number} hub_ahead_ms how far ahead the hub streams without P2P
 * @property {number} peer_ahead_ms how far ahead peers are asked for chunks
 * @property {number} in_order_ms within this far ahead, peers are asked in playback order; beyond, rarest first
 * @property {number} peer_window the most chunks one peer range asks for
 * @property {number} first_copy_ahead_ms how far ahead the hub is asked for first copies
 * @property {number} first_copy_chunks the most chunks one first-copy request names
 */

/**
 * What the scheduler knows of one source's range in flight [from, to); its
 * chunks arrive in order and next is the next one expected.
 * @typedef {object} SourceState
 * @property {boolean} active
 * @property {number} from
 * @property {number} to
 * @property {number} next
 * @property {boolean} stalled no chunk arrived for longer than the source timeout
 * @property {boolean} firstCopy a hub range asked as first copies
 */

/**
 * One open, trusted peer link for the track.
 * @typedef {object} PeerSource
 * @property {SourceState} state
 * @property {boolean[] | null} has the chunks the peer holds; null: all of them
 */

/**
 * The state the scheduler decides from.
 * @typedef {object} SchedInput
 * @property {number[]} chunkMs each chunk's duration
 * @property {boolean[]} present the chunks held locally
 * @property {number} playheadMs playback position (0 before playback starts; negative for a track that plays later: minus the time until it starts)
 * @property {SourceState} hub
 * @property {PeerSource[]} peers in the caller's order of preference
 * @property {boolean} p2p false: the hub streams everything
 * @property {boolean} waiting the first peer search of the playback is under way
 * @property {boolean} firstCopyHold a first-copy request came back short recently
 * @property {boolean} [startLate] playback has not started start_rescue_real_ms after it began (rule 3)
 */

/**
 * A half-open chunk range [from, to).
 * @typedef {{ from: number, to: number }} Range
 */

/**
 * Which new requests to send; null: no request. A new request to a source
 * replaces that source's range of the track in flight.
 * @typedef {object} SchedDecision
 * @property {Range | null} hub
 * @property {boolean} hubFirstCopy the hub request asks for first copies
 * @property {(Range | null)[]} peers one entry per input peer
 */

/** @type {Readonly<SchedConfig>} */
export const SCHED_DEFAULTS = Object.freeze({
  start_ms: 10_000,
  emergency_ms: 3_000,
  rescue_ms: 500,
  hub_ahead_ms: 10_000,
  peer_ahead_ms: 300_000,
  in_order_ms: 10_000,
  peer_window: 8,
  first_copy_ahead_ms: 3_600_000,
  first_copy_chunks: 32,
});

/**
 * The constants of the peer algorithm beyond the scheduler's windows: the
 * JSON of peer.DefaultAlgorithm() that the hub serves at GET /api/config
 * (testdata/peer-algorithm/algorithm.json). Times are media milliseconds
 * unless the name says real (in a browser, media time runs at the speed of
 * the wall clock while playing).
 * @typedef {object} Algorithm
 * @property {SchedConfig} sched the scheduler's windows
 * @property {number} max_sources peer links one playback takes chunks from (≤ 8)
 * @property {number} start_wait_real_ms how long a start waits for a peer (§8.2.3)
 * @property {number} start_rescue_real_ms a start that has not happened this long after the playback began is late: its first chunk goes to the hub (§8.3)
 * @property {number} source_timeout_ms a range with no chunk for this long is slow: cancelled, its source left alone as long
 * @property {number} silence_real_ms a source that sent nothing this long after first asked is abandoned (timeout)
 * @property {number} lookup_retry_ms shortest time between two tracker lookups of a playback
 * @property {number} lookup_retry_real_ms ... and shortest real time between them
 * @property {number} max_lookups most tracker lookups per playback
 * @property {number} lookup_backoff_max_ms cap of the wait before a lookup after failed links (lookupBackoffMs)
 * @property {number} first_copy_retry_ms the first-copy hold (§8.4)
 * @property {number} holding_interval_real_ms shortest time between two holding messages of a track to one destination
 * @property {number} max_peer_conns PeerConnections kept with other peers
 */

/** @type {Readonly<Omit<Algorithm, 'sched'>>} */
const ALGORITHM_SCALARS = Object.freeze({
  max_sources: 4,
  start_wait_real_ms: 150,
  start_rescue_real_ms: 400,
  source_timeout_ms: 2000,
  silence_real_ms: 3000,
  lookup_retry_ms: 1000,
  lookup_retry_real_ms: 250,
  max_lookups: 64,
  lookup_backoff_max_ms: 30000,
  first_copy_retry_ms: 2000,
  holding_interval_real_ms: 100,
  max_peer_conns: 16,
});

/**
 * The built-in constants of the algorithm, used when GET /api/config fails
 * (a unit test checks them against testdata/peer-algorithm/algorithm.json).
 * @type {Readonly<Algorithm>}
 */
export const ALGORITHM_DEFAULTS = Object.freeze({ sched: SCHED_DEFAULTS, ...ALGORITHM_SCALARS });

/** Most peer sources of one playback (PROTOCOL.md §8.2). */
export const MAX_SOURCES_LIMIT = 8;

/**
 * How long (ms) a peer waits before its next tracker lookup, for any track,
 * after `fails` peer links of its lookups in a row failed to open
 * (PROTOCOL.md §8.2): none after 0, else lookup_retry_ms·2^(fails−1), at
 * most lookup_backoff_max_ms (peer.Algorithm.LookupBackoffMS).
 * @param {number} fails
 * @param {Pick<Algorithm, 'lookup_retry_ms'|'lookup_backoff_max_ms'>} cfg
 */
export function lookupBackoffMs(fails, cfg) {
  if (fails <= 0) return 0;
  return Math.min(cfg.lookup_retry_ms * 2 ** (Math.min(fails, 31) - 1), cfg.lookup_backoff_max_ms);
}

/**
 * Why a link closed before it opened, as the Go peer counts it
 * (peer.PairFailures): refused (could not set it up), trimmed (room for a
 * newer link), timeout, failed (ICE/DTLS, or its channel closed), remote
 * (the other side ended it), abandoned (nothing needed it any more).
 * @typedef {'refused'|'trimmed'|'timeout'|'failed'|'remote'|'abandoned'} LinkEnd
 */

/** The rejection of PeerLink.ready() for a link that closed before it opened. */
export class LinkClosedError extends Error {
  /**
   * @param {string} message
   * @param {LinkEnd} why
   */
  constructor(message, why) {
    super(message);
    this.why = why;
  }
}

/**
 * Whether a link that closed this way counts as a failed link in the lookup
 * backoff (PROTOCOL.md §8.2): the connect timeout, ICE/DTLS failing or the
 * other side ending it; not this page's own choice.
 * @param {unknown} err the rejection of PeerLink.ready()
 */
export function failedLink(err) {
  return err instanceof LinkClosedError && (err.why === 'timeout' || err.why === 'failed' || err.why === 'remote');
}

/**
 * Holds a peer's tracker lookups after peer links of its lookups failed to
 * open (lookupBackoffMs): one per page (Net), shared by its playbacks.
 */
export class LookupBackoff {
  constructor() {
    /** Links failed in a row. */
    this.fails = 0;
    /** No lookup before this time (performance.now()). */
    this.until = 0;
  }

  /**
   * A link did not open.
   * @param {number} now
   * @param {Pick<Algorithm, 'lookup_retry_ms'|'lookup_backoff_max_ms'>} cfg
   */
  failed(now, cfg) {
    this.fails++;
    this.until = Math.max(this.until, now + lookupBackoffMs(this.fails, cfg));
  }

  /** A link opened: lookups are paced as usual again. */
  opened() {
    this.fails = 0;
    this.until = 0;
  }

  /** @param {number} now */
  holds(now) {
    return now < this.until;
  }
}

/**
 * An Algorithm from what the hub served (or nothing): each missing,
 * non-numeric or non-positive value is replaced by its default;
 * max_sources is at most MAX_SOURCES_LIMIT.
 * @param {unknown} [a]
 * @returns {Algorithm}
 */
export function withAlgorithmDefaults(a) {
  /** @type {Record<string, unknown>} */
  const src = a && typeof a === 'object' ? /** @type {Record<string, unknown>} */ (a) : {};
  const sched = src.sched && typeof src.sched === 'object' ? /** @type {Partial<SchedConfig>} */ (src.sched) : {};
  /** @type {Algorithm} */
  const out = { ...ALGORITHM_SCALARS, sched: withDefaults(sched) };
  for (const k of /** @type {(keyof typeof ALGORITHM_SCALARS)[]} */ (Object.keys(ALGORITHM_SCALARS))) {
    const v = src[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) out[k] = v;
  }
  out.max_sources = Math.min(Math.floor(out.max_sources), MAX_SOURCES_LIMIT);
  return out;
}

/**
 * cfg with each missing or non-positive value replaced by its default.
 * @param {Partial<SchedConfig>} [cfg]
 * @returns {SchedConfig}
 */
export function withDefaults(cfg = {}) {
  const out = { ...SCHED_DEFAULTS };
  for (const k of /** @type {(keyof SchedConfig)[]} */ (Object.keys(SCHED_DEFAULTS))) {
    const v = cfg[k];
    if (typeof v === 'number' && v > 0) out[k] = v;
  }
  return out;
}

/**
 * Chunk start times: starts[c] is the start of chunk c, starts[n] the total.
 * @param {number[]} chunkMs
 * @returns {number[]}
 */
export function chunkStarts(chunkMs) {
  const starts = [0];
  for (const d of chunkMs) starts.push(starts[starts.length - 1] + d);
  return starts;
}

/**
 * The chunk playing at pos: the first whose end is > pos; 0 for pos ≤ 0 and
 * n at or after the end (peer.Timeline.ChunkAt; timeline.js's chunkAt works
 * from a manifest in seconds instead).
 * @param {number[]} starts from chunkStarts
 * @param {number} pos
 * @returns {number}
 */
export function chunkAtMs(starts, pos) {
  const n = starts.length - 1;
  if (pos >= starts[n]) return n;
  if (pos <= 0) return 0;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid + 1] > pos) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The first chunk ≥ from not present, or present.length (peer.FirstMissing).
 * @param {boolean[]} present
 * @param {number} from
 * @returns {number}
 */
export function firstMissing(present, from) {
  for (let i = Math.max(from, 0); i < present.length; i++) {
    if (!present[i]) return i;
  }
  return present.length;
}

/**
 * @param {SourceState} s
 * @returns {boolean} the range is in flight and moving
 */
const healthy = (s) => s.active && !s.stalled;

/**
 * @param {PeerSource} p
 * @param {number} seq
 * @returns {boolean} the peer holds chunk seq
 */
const holds = (p, seq) => p.has === null || (seq < p.has.length && p.has[seq]);

/**
 * Decides what to ask whom: the rules of Schedule in peer/sched.go, in order
 * (docs/PROTOCOL.md §8.3):
 *  1. Every chunk in a healthy range in flight is covered.
 *  2. Each idle, healthy peer (in order) is asked for up to peer_window
 *     uncovered missing chunks it holds, starting less than peer_ahead_ms
 *     ahead: the first such chunk within in_order_ms of the playhead, else
 *     the rarest among the linked peers (lowest index on ties), extended
 *     while the next chunk is uncovered, missing and held.
 *  3. Emergency: when the next missing chunk is uncovered and starts less
 *     than emergency_ms ahead (halved while waiting), or, while playing or
 *     at a late start (startLate), is not in the hub's range and starts less
 *     than rescue_ms ahead (a peer range covering it is too slow), the hub gets the run from it of
 *     chunks that are uncovered or so close. With P2P the run stops at the end of
 *     the emergency zone (at least one chunk); without, it reaches start_ms
 *     at start and hub_ahead_ms while playing. At the very start nothing
 *     goes to the hub while waiting.
 *  4. With P2P and the hub idle (and no firstCopyHold, not waiting), the
 *     hub is asked for first copies: the first run of uncovered missing
 *     chunks no linked peer holds, up to first_copy_chunks, starting less
 *     than first_copy_ahead_ms ahead.
 *  5. Without P2P and the hub idle, the hub streams hub_ahead_ms ahead,
 *     refilling when less than half of it is buffered.
 * @param {Partial<SchedConfig> | undefined} config missing or non-positive values: SCHED_DEFAULTS
 * @param {SchedInput} input
 * @returns {SchedDecision}
 */
export function schedule(config, input) {
  const cfg = withDefaults(config);
  const starts = chunkStarts(input.chunkMs);
  const n = input.chunkMs.length;
  const playhead = input.playheadMs;
  /** @type {SchedDecision} */
  const d = { hub: null, hubFirstCopy: false, peers: input.peers.map(() => null) };
  const next = firstMissing(input.present, chunkAtMs(starts, playhead));
  if (next >= n) return d;
  const playing = next > 0 || playhead > 0;
  const covered = new Array(n).fill(false);
  /** @param {number} from @param {number} to */
  const cover = (from, to) => {
    for (let c = Math.max(from, 0); c < Math.min(to, n); c++) covered[c] = true;
  };
  if (healthy(input.hub)) cover(input.hub.next, input.hub.to);
  const holders = new Array(n).fill(0);
  for (const p of input.peers) {
    if (healthy(p.state)) cover(p.state.next, p.state.to);
    if (p.state.stalled) continue;
    for (let c = next; c < n; c++) {
      if (holds(p, c)) holders[c]++;
    }
  }
  /** @param {number} c */
  const free = (c) => !input.present[c] && !covered[c];
  /** @param {number} c */
  /**
   * With P2P, the hub's range, even stalled, still has c to send. The hub is
   * slow, it does not lie: asking it again would only queue a second copy
   * behind the first (without P2P, a stalled hub is asked again: there is no
   * other source).
   * @param {number} c
   */
  const hubOwes = (c) => input.p2p && input.hub.active && c >= input.hub.next && c < input.hub.to;
  /** @param {number} c */
  const rescue = (c) => input.p2p && (playing || !!input.startLate) && !input.present[c] && !hubOwes(c) && starts[c] - playhead < cfg.rescue_ms;

  // 2. Peers.
  input.peers.forEach((p, i) => {
    if (p.state.active || p.state.stalled) return;
    const r = peerRange(cfg, starts, playhead, p, next, free, holders);
    if (r) {
      d.peers[i] = r;
      cover(r.from, r.to);
    }
  });

  // 3. Emergency.
  let threshold = cfg.emergency_ms;
  if (input.waiting) threshold /= 2;
  const ahead = Math.max(starts[next] - playhead, 0);
  if ((free(next) && !hubOwes(next) && ahead < threshold && (playing || !input.waiting)) || rescue(next)) {
    let reach = playhead + threshold;
    if (!input.p2p && playing) reach = playhead + cfg.hub_ahead_ms;
    else if (!input.p2p) reach = playhead + cfg.start_ms;
    else if (!playing) reach = 0; // the first chunk only: peers may serve the rest
    let to = next;
    while (to < n && (free(to) || rescue(to)) && !hubOwes(to) && (to === next || starts[to] < reach)) to++;
    d.hub = { from: next, to };
    return d;
  }
  if (input.hub.active) return d;

  // 4. First copies.
  if (input.p2p) {
    if (input.waiting || input.firstCopyHold) return d;
    let from = -1;
    for (let c = next; c < n && starts[c] - playhead < cfg.first_copy_ahead_ms; c++) {
      if (free(c) && holders[c] === 0) {
        from = c;
        break;
      }
    }
    if (from < 0) return d;
    let to = from;
    while (to < n && to - from < cfg.first_copy_chunks && free(to) && holders[to] === 0) to++;
    d.hub = { from, to };
    d.hubFirstCopy = true;
    return d;
  }

  // 5. No P2P: stream ahead.
  if (ahead < cfg.hub_ahead_ms / 2) {
    let to = next;
    while (to < n && free(to) && (to === next || starts[to] < playhead + cfg.hub_ahead_ms)) to++;
    if (to > next) d.hub = { from: next, to }; // next may be covered by a peer
  }
  return d;
}

/**
 * The next range for an idle peer (rule 2), or null.
 * @param {SchedConfig} cfg
 * @param {number[]} starts
 * @param {number} playhead
 * @param {PeerSource} p
 * @param {number} next the first missing chunk at the playhead
 * @param {(c: number) => boolean} free
 * @param {number[]} holders how many linked peers hold each chunk
 * @returns {Range | null}
 */
function peerRange(cfg, starts, playhead, p, next, free, holders) {
  const n = starts.length - 1;
  /** @param {number} c */
  const ok = (c) => free(c) && holds(p, c) && starts[c] - playhead < cfg.peer_ahead_ms;
  let from = -1;
  for (let c = next; c < n && starts[c] < playhead + cfg.in_order_ms; c++) {
    if (ok(c)) {
      from = c;
      break;
    }
  }
  if (from < 0) {
    for (let c = next; c < n; c++) {
      if (ok(c) && (from < 0 || holders[c] < holders[from])) from = c;
    }
  }
  if (from < 0) return null;
  let to = from;
  while (to < n && to - from < cfg.peer_window && ok(to)) to++;
  return { from, to };
}

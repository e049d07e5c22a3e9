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
 * @property {number} playheadMs playback position (0 before playback starts)
 * @property {SourceState} hub
 * @property {PeerSource[]} peers in the caller's order of preference
 * @property {boolean} p2p false: the hub streams everything
 * @property {boolean} waiting the first peer search of the playback is under way
 * @property {boolean} firstCopyHold a first-copy request came back short recently
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
  hub_ahead_ms: 10_000,
  peer_ahead_ms: 300_000,
  in_order_ms: 10_000,
  peer_window: 8,
  first_copy_ahead_ms: 3_600_000,
  first_copy_chunks: 32,
});

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
 *     than emergency_ms ahead (halved while waiting), the hub gets the
 *     uncovered missing run from it. With P2P the run stops at the end of
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
  if (free(next) && ahead < threshold && (playing || !input.waiting)) {
    let reach = playhead + threshold;
    if (!input.p2p && playing) reach = playhead + cfg.hub_ahead_ms;
    else if (!input.p2p) reach = playhead + cfg.start_ms;
    else if (!playing) reach = 0; // the first chunk only: peers may serve the rest
    let to = next;
    while (to < n && free(to) && (to === next || starts[to] < reach)) to++;
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

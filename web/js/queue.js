// The play queue: the tracks to play in order, the one playing, shuffle and
// repeat. It survives a reload (localStorage). No DOM here.

/** @typedef {'off'|'all'|'one'} Repeat */

/** Entries kept at most (a whole library queued stays bounded). */
export const MAX_QUEUE = 10000;

/** The localStorage key. */
export const QUEUE_KEY = 'ztream.queue';

/**
 * @typedef {object} QueueState
 * @property {string[]} ids in play order
 * @property {number} index the entry playing (-1: none)
 * @property {boolean} shuffle
 * @property {Repeat} repeat
 */

export class Queue extends EventTarget {
  /**
   * @param {{storage?: Pick<Storage, 'getItem'|'setItem'>|null, rand?: () => number}} [opts]
   */
  constructor({ storage = null, rand = Math.random } = {}) {
    super();
    this.storage = storage;
    this.rand = rand;
    /** @type {string[]} */
    this.ids = [];
    /** The order before shuffling, to go back to. @type {string[]} */
    this.original = [];
    this.index = -1;
    this.shuffle = false;
    /** @type {Repeat} */
    this.repeat = 'all';
  }

  /** The id playing, or null. */
  current() {
    return this.index >= 0 && this.index < this.ids.length ? this.ids[this.index] : null;
  }

  /** The ids after the one playing. */
  upNext() {
    return this.ids.slice(this.index + 1);
  }

  /**
   * Replaces the queue with ids, playing entry at (shuffled: at first, the rest in random order).
   * @param {string[]} ids
   * @param {number} [at]
   */
  start(ids, at = 0) {
    // A list longer than the bound: the window of it around entry at.
    const off = Math.max(0, Math.min(at - Math.floor(MAX_QUEUE / 2), ids.length - MAX_QUEUE));
    this.ids = ids.slice(off, off + MAX_QUEUE);
    this.original = this.ids.slice();
    this.index = this.ids.length > 0 ? Math.min(Math.max(at - off, 0), this.ids.length - 1) : -1;
    if (this.shuffle) this.shuffleRest(true);
    this.changed();
  }

  /**
   * Puts ids right after the one playing ("play next").
   * @param {string[]} ids
   */
  addNext(ids) {
    const room = Math.max(MAX_QUEUE - this.ids.length, 0);
    const add = ids.slice(0, room);
    this.ids.splice(this.index + 1, 0, ...add);
    this.original.push(...add);
    this.changed();
  }

  /**
   * Puts ids at the end of the queue ("add to queue").
   * @param {string[]} ids
   */
  add(ids) {
    const add = ids.slice(0, Math.max(MAX_QUEUE - this.ids.length, 0));
    this.ids.push(...add);
    this.original.push(...add);
    this.changed();
  }

  /**
   * Removes entry i (of ids). Removing the one playing lets it play on;
   * next() then goes to what followed it (current() is then the entry
   * before it).
   * @param {number} i
   */
  remove(i) {
    if (i < 0 || i >= this.ids.length) return;
    const [id] = this.ids.splice(i, 1);
    const o = this.original.indexOf(id);
    if (o >= 0) this.original.splice(o, 1);
    if (i <= this.index) this.index--;
    this.changed();
  }

  /**
   * Moves entry from to position to (of ids).
   * @param {number} from
   * @param {number} to
   */
  move(from, to) {
    const n = this.ids.length;
    if (from < 0 || from >= n || to < 0 || to >= n || from === to) return;
    const [id] = this.ids.splice(from, 1);
    this.ids.splice(to, 0, id);
    if (this.index === from) this.index = to;
    else if (from < this.index && to >= this.index) this.index--;
    else if (from > this.index && to <= this.index) this.index++;
    this.changed();
  }

  /**
   * Turns shuffle on (the rest of the queue in random order) or off (the
   * order it had, from the track playing).
   * @param {boolean} on
   */
  setShuffle(on) {
    if (on === this.shuffle) return;
    this.shuffle = on;
    if (on) {
      this.original = this.ids.slice();
      this.shuffleRest(false);
    } else {
      const cur = this.current();
      this.ids = this.original.slice();
      this.index = cur === null ? -1 : this.ids.indexOf(cur);
    }
    this.changed();
  }

  /** off → all → one → off. */
  cycleRepeat() {
    this.repeat = this.repeat === 'off' ? 'all' : this.repeat === 'all' ? 'one' : 'off';
    this.changed();
  }

  /**
   * Shuffles the entries after the one playing (Fisher–Yates); with
   * toFront, the one playing moves to the front first.
   * @param {boolean} toFront
   */
  shuffleRest(toFront) {
    if (toFront && this.index > 0) {
      const [cur] = this.ids.splice(this.index, 1);
      this.ids.unshift(cur);
      this.index = 0;
    }
    const a = this.ids;
    for (let i = a.length - 1; i > this.index + 1; i--) {
      const j = this.index + 1 + Math.floor(this.rand() * (i - this.index));
      [a[i], a[j]] = [a[j], a[i]];
    }
  }

  /**
   * The id next() would move to, without moving.
   * @param {boolean} [auto] the track ended by itself (repeat one replays it)
   */
  peekNext(auto = false) {
    if (this.ids.length === 0) return null;
    if (auto && this.repeat === 'one') return this.current();
    if (this.index + 1 < this.ids.length) return this.ids[this.index + 1];
    return this.repeat === 'off' ? null : this.ids[0];
  }

  /**
   * Moves to the next entry and returns its id, or null at the end.
   * @param {boolean} [auto]
   */
  next(auto = false) {
    const id = this.peekNext(auto);
    if (id === null) return null;
    if (!(auto && this.repeat === 'one')) {
      if (this.index + 1 < this.ids.length) this.index++;
      else {
        this.index = 0;
        if (this.shuffle) this.shuffleRest(false); // a new round in a new order
      }
    }
    this.changed();
    return this.current();
  }

  /** Moves to the previous entry and returns its id, or null at the start. */
  prev() {
    if (this.ids.length === 0) return null;
    if (this.index > 0) this.index--;
    else if (this.repeat !== 'off') this.index = this.ids.length - 1;
    else return null;
    this.changed();
    return this.current();
  }

  /** @returns {QueueState} */
  state() {
    return { ids: this.ids.slice(), index: this.index, shuffle: this.shuffle, repeat: this.repeat };
  }

  /**
   * Restores what the last page saved, keeping only the ids known (the
   * library may have changed).
   * @param {(id: string) => boolean} known
   */
  restore(known) {
    if (!this.storage) return;
    try {
      const s = JSON.parse(this.storage.getItem(QUEUE_KEY) || 'null');
      if (!s || !Array.isArray(s.ids)) return;
      this.ids = s.ids.filter((/** @type {unknown} */ id) => typeof id === 'string').slice(0, MAX_QUEUE);
      this.original = Array.isArray(s.original) ? s.original.filter((/** @type {unknown} */ id) => typeof id === 'string') : this.ids.slice();
      this.index = typeof s.index === 'number' && s.index < this.ids.length ? Math.max(s.index, -1) : -1;
      this.shuffle = s.shuffle === true;
      this.repeat = ['off', 'all', 'one'].includes(s.repeat) ? s.repeat : 'all';
      this.retain(known);
    } catch {
      // A corrupt saved queue is forgotten.
    }
  }

  /**
   * Drops the entries whose id is not known (tracks the library lost). The
   * position stays: if the entry playing went, next() goes to what followed.
   * @param {(id: string) => boolean} known
   */
  retain(known) {
    const ids = [];
    let index = -1;
    for (let i = 0; i < this.ids.length; i++) {
      if (known(this.ids[i])) ids.push(this.ids[i]);
      if (i === this.index) index = ids.length - 1;
    }
    const kept = new Set(ids);
    this.ids = ids;
    this.index = index;
    this.original = this.original.filter((id) => kept.has(id));
    this.changed();
  }

  changed() {
    if (this.storage) {
      try {
        this.storage.setItem(QUEUE_KEY, JSON.stringify({ ...this.state(), original: this.original }));
      } catch {
        // Storage full or denied: the queue lives on in this page.
      }
    }
    this.dispatchEvent(new Event('change'));
  }
}

// The page: track list with search, now-playing panel, chunk map, session
// numbers, player bar and keyboard shortcuts. All DOM work lives here.

import { formatTime, durationSec } from './timeline.js';
import { fold } from './text.js';
import { coverURL } from './api.js';
import { MediaSessionBridge } from './mediasession.js';
import { groupAlbums, groupArtists, matchesAll, parseRoute, routeHash } from './library.js';
import { Queue } from './queue.js';

/** @typedef {import('./api.js').Manifest} Manifest */
/** @typedef {import('./api.js').TrackSummary} TrackSummary */

export { fold };

/**
 * "1 track", "3 tracks".
 * @param {number} n
 * @param {string} word
 */
function count(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Whether track matches query: every word of the query occurs in its title, artist, album or album artist.
 * @param {{title: string, artist: string, album: string, album_artist?: string}} track
 * @param {string} query
 */
export function matches(track, query) {
  const words = fold(query).split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const hay = fold(`${track.title} ${track.artist} ${track.album} ${track.album_artist || ''}`);
  return words.every((w) => hay.includes(w));
}

/**
 * Formats a byte count: 0 B, 12.3 kB, 4.56 MB.
 * @param {number} n
 */
export function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/**
 * A stable hue (deg) for a track id, for its generated cover.
 * @param {string} id
 */
function hue(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

export class UI {
  /**
   * @param {{document: Document, player: import('./player.js').Player,
   *   store: import('./chunkstore.js').ChunkStore, stats: import('./stats.js').SessionStats, queue?: Queue}} opts
   */
  constructor({ document, player, store, stats, queue = new Queue() }) {
    this.d = document;
    this.player = player;
    this.store = store;
    this.stats = stats;
    /** The parts of the notice line (setNotice). @type {{degraded: string, player: string}} */
    this.notices = { degraded: '', player: '' };
    /** @type {TrackSummary[]} */
    this.tracks = [];
    /** @type {TrackSummary[]} */
    this.visible = [];
    /** The element of index.html with this id. @type {(id: string) => HTMLElement} */
    this.$ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
    this.seeking = false;
    /** @type {HTMLElement[]} */
    this.cells = [];
    /** When the system's media position was last set (performance.now()). */
    this.positionAt = 0;
    const win = document.defaultView;
    /** The view shown (location hash). @type {import('./library.js').Route} */
    this.route = parseRoute(win ? win.location.hash : '');
    /** What plays next: the list a track was played from, shuffled or not, plus what was added. */
    this.queue = queue;
    /** Whether the queue chose the track playing (playTrack). */
    this.fromQueue = false;
    /** When true (default), the next track plays when one ends: gaplessly where the player can chain it. */
    this.autoAdvance = true;
    /** Whether the player was told what follows the track playing (after its 'nearend'); queue changes then tell it again. */
    this.nextTold = false;
    this.media = new MediaSessionBridge(document.defaultView ? document.defaultView.navigator : navigator, {
      play: () => { if (player.audio.paused) this.toggle(); },
      pause: () => { if (!player.audio.paused) this.toggle(); },
      next: () => this.next(),
      previous: () => this.prev(),
      seekTo: (t) => { if (player.trackId) player.seek(Math.min(t, player.duration || t)); },
      position: () => player.currentTime,
    });
  }

  /**
   * Loads the catalog and wires every control.
   * @param {import('./api.js').CatalogAPI} api
   */
  async start(api) {
    this.wire();
    this.tracks = await api.tracks();
    const known = new Set(this.tracks.map((t) => t.id));
    this.queue.restore((id) => known.has(id));
    this.renderList();
    this.renderQueue();
    this.showLinkedTrack();
    this.renderStats();
  }

  /**
   * Fetches the catalog again (the hub said the library changed) and
   * redraws the list; the search and the current track stay.
   * @param {import('./api.js').CatalogAPI} api
   */
  async reloadCatalog(api) {
    this.tracks = await api.tracks();
    const known = new Set(this.tracks.map((t) => t.id));
    this.queue.retain((id) => known.has(id));
    this.renderList();
  }

  wire() {
    const $ = this.$;
    const p = this.player;
    $('search').addEventListener('input', () => this.renderList());
    $('search').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && this.visible.length > 0) this.playList(this.visible.map((t) => t.id), 0);
      if (e.key === 'Escape') {
        /** @type {HTMLInputElement} */ (e.target).value = '';
        this.renderList();
      }
    });
    $('tracklist').addEventListener('click', (e) => {
      const el = /** @type {Element} */ (e.target);
      const add = /** @type {HTMLElement|null} */ (el.closest('[data-enqueue]'));
      if (add) {
        this.queue.add([/** @type {string} */ (add.dataset.enqueue)]);
        return;
      }
      const row = /** @type {HTMLElement|null} */ (el.closest('[data-track-id]'));
      if (!row) return;
      const id = /** @type {string} */ (row.dataset.trackId);
      this.playList(this.visible.map((t) => t.id), Math.max(this.visible.findIndex((t) => t.id === id), 0));
    });
    $('group-play').addEventListener('click', () => this.playList(this.visible.map((t) => t.id), 0));
    $('btn-shuffle').addEventListener('click', () => this.queue.setShuffle(!this.queue.shuffle));
    $('btn-repeat').addEventListener('click', () => this.queue.cycleRepeat());
    this.queue.addEventListener('change', () => {
      this.renderQueue();
      if (this.nextTold) this.tellNext();
    });
    $('queue').addEventListener('click', (e) => {
      const b = /** @type {HTMLElement|null} */ (/** @type {Element} */ (e.target).closest('button[data-op]'));
      if (!b) return;
      const i = Number(b.dataset.i);
      if (b.dataset.op === 'up') this.queue.move(i, i - 1);
      else if (b.dataset.op === 'down') this.queue.move(i, i + 1);
      else if (b.dataset.op === 'remove') this.queue.remove(i);
    });
    const win = this.d.defaultView;
    if (win) {
      win.addEventListener('hashchange', () => {
        this.route = parseRoute(win.location.hash);
        this.renderList();
        const main = this.d.querySelector('main.library');
        if (main) main.scrollTop = 0;
      });
    }
    $('btn-play').addEventListener('click', () => this.toggle());
    $('btn-next').addEventListener('click', () => this.next());
    $('btn-prev').addEventListener('click', () => this.prev());
    $('btn-mute').addEventListener('click', () => {
      p.audio.muted = !p.audio.muted;
    });
    const seekbar = /** @type {HTMLInputElement} */ ($('seekbar'));
    seekbar.addEventListener('input', () => {
      this.seeking = true;
      $('t-cur').textContent = formatTime((Number(seekbar.value) / 1000) * p.duration);
      seekbar.style.setProperty('--p', `${Number(seekbar.value) / 10}%`);
    });
    seekbar.addEventListener('change', () => {
      this.seeking = false;
      p.seek((Number(seekbar.value) / 1000) * p.duration);
    });
    const vol = /** @type {HTMLInputElement} */ ($('volume'));
    vol.addEventListener('input', () => {
      p.audio.volume = Number(vol.value) / 100;
      p.audio.muted = false;
    });
    p.audio.volume = Number(vol.value) / 100;
    p.audio.addEventListener('volumechange', () => this.renderVolume());
    for (const ev of ['play', 'pause', 'playing', 'ended', 'emptied']) p.audio.addEventListener(ev, () => this.renderPlayState());
    p.audio.addEventListener('timeupdate', () => this.renderTime());
    p.addEventListener('track', (e) => {
      const { manifest, gapless = false, dir = 1 } = /** @type {CustomEvent<{manifest: Manifest, gapless?: boolean, dir?: number}>} */ (e).detail;
      this.setNotice('player', '');
      // A gapless move: the chained track after (or, seeking back, the one before) is told again.
      this.nextTold = gapless && dir < 0;
      if (gapless) this.followQueue(manifest.id, dir);
      this.renderTrack(manifest);
    });
    p.addEventListener('failed', (e) => {
      const { manifest, reason } = /** @type {CustomEvent<{manifest: Manifest, reason: string}>} */ (e).detail;
      this.setNotice('player', `Could not play “${manifest.title || manifest.id}”: ${reason}. Pick a track to try again.`);
      this.renderPlayState();
    });
    p.addEventListener('nearend', () => {
      this.nextTold = true;
      this.tellNext();
    });
    this.store.addEventListener('chunk', (e) => {
      const { detail } = /** @type {CustomEvent<{track: string, seq: number, source: string}>} */ (e);
      if (detail.track === p.trackId) this.paintChunk(detail.seq, detail.source);
    });
    this.store.addEventListener('complete', () => this.markCached());
    this.stats.addEventListener('change', () => this.scheduleStats());
    this.d.addEventListener('keydown', (e) => this.onKey(e));
    this.renderVolume();
    this.renderPlayState();
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    const t = /** @type {HTMLInputElement|null} */ (e.target);
    const typing = t && (t.tagName === 'INPUT' && t.type !== 'range') || (t && t.isContentEditable);
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const p = this.player;
    switch (e.key) {
      case ' ':
      case 'Spacebar':
        if (t && t.tagName === 'BUTTON') return; // the button itself handles space
        e.preventDefault();
        this.toggle();
        break;
      case 'ArrowLeft':
        e.preventDefault();
        p.seek(p.currentTime - 10);
        break;
      case 'ArrowRight':
        e.preventDefault();
        p.seek(p.currentTime + 10);
        break;
      case 'ArrowUp':
        e.preventDefault();
        p.audio.volume = Math.min(1, Math.round((p.audio.volume + 0.1) * 100) / 100);
        break;
      case 'ArrowDown':
        e.preventDefault();
        p.audio.volume = Math.max(0, Math.round((p.audio.volume - 0.1) * 100) / 100);
        break;
      default:
    }
  }

  /**
   * Plays track id (from a row, a button or the automation API); fromQueue:
   * the queue chose it, so next and previous follow the queue.
   * @param {string} id
   * @param {boolean} [fromQueue]
   */
  playTrack(id, fromQueue = false) {
    this.fromQueue = fromQueue;
    const started = this.player.play(id);
    // A track that cannot start (its manifest refused: gone from an origin,
    // the origin failed...) says so; another play() superseding it does not.
    started.catch((err) => {
      if (err && err.name === 'AbortError') return;
      const t = this.tracks.find((x) => x.id === id);
      // The server's words, without the request line (api.js: "GET path: status ").
      const why = String(err && err.message ? err.message : err).replace(/^GET \S+: \d{3} /, '');
      this.setNotice('player', `Could not play “${t ? t.title : id}”: ${why}. Pick a track to try again.`);
      this.renderPlayState();
    });
    return started;
  }

  /**
   * Starts a queue of ids from entry at.
   * @param {string[]} ids
   * @param {number} at
   */
  playList(ids, at) {
    if (ids.length === 0) return Promise.resolve();
    this.queue.start(ids, at);
    const id = this.queue.current();
    return id ? this.playTrack(id, true).catch(() => {}) : Promise.resolve();
  }

  /** The id of what plays after the track playing: the queue's next, else the next row; null at the end. */
  upcoming() {
    if (this.queued()) return this.queue.peekNext(true);
    const n = this.neighbour(+1);
    return n ? n.id : null;
  }

  /**
   * Tells the player what follows the track playing: chained for gapless
   * playback, or with autoAdvance off only its start prefetched.
   */
  tellNext() {
    const p = this.player;
    const id = this.upcoming();
    if (this.autoAdvance) p.setNext(id).catch((err) => p.log(`next track ${id}: ${err.message}`));
    else if (id && id !== p.trackId) p.prefetch(id).catch(() => {});
  }

  /**
   * Moves the queue along with a gapless move of the player to track id
   * (dir +1: the next, −1: back into the one before); a track the queue
   * did not choose ends following it.
   * @param {string} id
   * @param {number} dir
   */
  followQueue(id, dir) {
    if (!this.queued()) return;
    const q = this.queue;
    if (dir > 0 && q.peekNext(true) === id) q.next(true);
    else if (dir > 0 && q.ids[q.index + 1] === id) q.next();
    else if (q.current() === id) return; // the same track again (repeat one, changed meanwhile)
    else if (dir < 0 && q.index > 0 && q.ids[q.index - 1] === id) q.prev();
    else {
      this.player.log(`${id} is not the queue's ${dir > 0 ? 'next' : 'previous'} track: next and previous follow the list`);
      this.fromQueue = false;
    }
  }

  /** Whether the queue chose the track playing: next and previous then follow the queue. */
  queued() {
    return this.fromQueue && this.queue.ids.length > 0;
  }

  toggle() {
    const p = this.player;
    if (!p.trackId) {
      const list = this.visible.length > 0 ? this.visible : this.tracks;
      // A queue kept from the last visit, or built with +, plays first.
      const id = this.queue.current() || (this.queue.ids.length > 0 ? this.queue.next() : null);
      if (id) this.playTrack(id, true).catch(() => {});
      else this.playList(list.map((t) => t.id), 0);
      return;
    }
    if (p.audio.paused) p.resume().catch(() => {});
    else p.pause();
  }

  /**
   * The track dir (+1/−1) away from the current one in the visible list (or the catalog).
   * @param {number} dir
   */
  neighbour(dir) {
    const list = this.visible.length > 0 ? this.visible : this.tracks;
    if (list.length === 0) return null;
    const i = list.findIndex((t) => t.id === this.player.trackId);
    if (i < 0) return list[0];
    return list[(i + dir + list.length) % list.length];
  }

  /**
   * Plays the next track: the queue's when the track playing is from it
   * (auto: the track ended by itself, so repeat one replays it), else the
   * next row.
   * @param {boolean} [auto]
   */
  next(auto = false) {
    if (this.queued()) {
      const id = this.queue.next(auto);
      if (id) this.playTrack(id, true).catch(() => {});
      return;
    }
    const n = this.neighbour(+1);
    if (n) this.playTrack(n.id).catch(() => {});
  }

  /** Restarts the track when more than 3 s in, else plays the previous one. */
  prev() {
    const p = this.player;
    if (p.trackId && p.currentTime > 3) {
      p.seek(0);
      return;
    }
    if (this.queued()) {
      const id = this.queue.prev();
      if (id) this.playTrack(id, true).catch(() => {});
      return;
    }
    const n = this.neighbour(-1);
    if (n) this.playTrack(n.id).catch(() => {});
  }

  /** The Up next panel and the shuffle and repeat buttons. */
  renderQueue() {
    const $ = this.$;
    const q = this.queue;
    $('btn-shuffle').setAttribute('aria-pressed', q.shuffle ? 'true' : 'false');
    const rep = $('btn-repeat');
    rep.dataset.repeat = q.repeat;
    rep.setAttribute('aria-pressed', q.repeat === 'off' ? 'false' : 'true');
    rep.setAttribute('aria-label', `Repeat: ${q.repeat}`);
    rep.title = `Repeat: ${q.repeat === 'one' ? 'this track' : q.repeat}`;
    const byId = new Map(this.tracks.map((t) => [t.id, t]));
    const first = q.index + 1;
    const shown = q.ids.slice(first, first + 50);
    $('queue').replaceChildren(...shown.map((id, k) => {
      const i = first + k;
      const t = byId.get(id);
      const li = this.d.createElement('li');
      const name = this.d.createElement('span');
      name.textContent = t ? t.title : id;
      const by = this.d.createElement('i');
      by.textContent = t ? ` — ${t.artist}` : '';
      name.append(by);
      const ops = this.d.createElement('span');
      ops.className = 'ops';
      for (const [op, glyph, label] of [['up', '↑', 'Move up'], ['down', '↓', 'Move down'], ['remove', '×', 'Remove']]) {
        const b = this.d.createElement('button');
        b.type = 'button';
        b.dataset.op = op;
        b.dataset.i = String(i);
        b.textContent = glyph;
        b.setAttribute('aria-label', `${label}: ${t ? t.title : id}`);
        // The first of Up next cannot move above the track playing, nor the last down.
        b.disabled = (op === 'up' && i === first) || (op === 'down' && i === q.ids.length - 1);
        ops.append(b);
      }
      li.append(name, ops);
      return li;
    }));
    const n = q.ids.length - first;
    $('queue-count').textContent = n > 0 ? String(n) : '';
    $('queue-empty').hidden = n > 0;
  }

  /**
   * Sets one part of the notice line above the library ('degraded': what
   * this browser cannot do; 'player': why the last track failed); empty
   * text clears it.
   * @param {'degraded'|'player'} kind
   * @param {string} text
   */
  setNotice(kind, text) {
    this.notices[kind] = text;
    const line = [this.notices.degraded, this.notices.player].filter(Boolean).join(' ');
    const el = this.$('notice');
    el.textContent = line;
    el.hidden = line === '';
  }

  /**
   * @param {'ok'|'fallback'|'error'} state
   * @param {string} text
   */
  setConnection(state, text) {
    const el = this.$('conn');
    el.className = `conn ${state}`;
    this.$('conn-text').textContent = text;
  }

  renderList() {
    const $ = this.$;
    const q = /** @type {HTMLInputElement} */ ($('search')).value;
    const r = this.route;
    const view = r.view === 'album' || r.view === 'albums' ? 'albums' : r.view === 'artist' || r.view === 'artists' ? 'artists' : 'tracks';
    for (const v of ['tracks', 'albums', 'artists']) {
      if (v === view) $(`nav-${v}`).setAttribute('aria-current', 'page');
      else $(`nav-${v}`).removeAttribute('aria-current');
    }
    /** @type {{href: string, title: string, sub: string, id: string, cover: string}[]|null} */
    let cards = null;
    /** @type {{kind: string, title: string, sub: string, id: string, cover: string}|null} */
    let head = null;
    let list = this.tracks.filter((t) => matches(t, q));
    let numbered = false;
    switch (r.view) {
      case 'albums':
        cards = groupAlbums(this.tracks).filter((a) => matchesAll([a.title, a.artist], q)).map((a) => ({
          href: routeHash({ view: 'album', artist: a.artist, album: a.title }), title: a.title,
          sub: [a.artist, a.year || ''].filter(Boolean).join(' · '), id: a.coverTrack || a.key, cover: a.cover,
        }));
        break;
      case 'artists':
        cards = groupArtists(this.tracks).filter((a) => matchesAll([a.name], q)).map((a) => {
          const c = a.albums.find((x) => x.cover);
          return {
            href: routeHash({ view: 'artist', name: a.name }), title: a.name,
            sub: `${count(a.albums.length, 'album')} · ${count(a.tracks.length, 'track')}`,
            id: c ? c.coverTrack : a.name, cover: c ? c.cover : '',
          };
        });
        break;
      case 'album': {
        const a = groupAlbums(this.tracks).find((x) => x.artist === r.artist && x.title === r.album);
        list = a ? a.tracks.filter((t) => matches(t, q)) : [];
        numbered = true;
        const secs = a && a.tracks.every((t) => t.duration_ms > 0) ? a.tracks.reduce((n, t) => n + t.duration_ms / 1000, 0) : 0;
        head = {
          kind: 'Album', title: r.album, id: a ? a.coverTrack || a.key : r.album, cover: a ? a.cover : '',
          sub: a ? [a.artist, a.year || '', count(a.tracks.length, 'track'), secs > 0 ? formatTime(secs) : ''].filter(Boolean).join(' · ') : 'No such album',
        };
        break;
      }
      case 'artist': {
        const a = groupArtists(this.tracks).find((x) => x.name === r.name);
        list = a ? a.tracks.filter((t) => matches(t, q)) : [];
        const c = a && a.albums.find((x) => x.cover);
        head = {
          kind: 'Artist', title: r.name, id: c ? c.coverTrack : r.name, cover: c ? c.cover : '',
          sub: a ? `${count(a.albums.length, 'album')} · ${count(a.tracks.length, 'track')}` : 'No such artist',
        };
        break;
      }
      default:
    }
    $('group-head').hidden = !head;
    if (head) {
      $('group-kind').textContent = head.kind;
      $('group-title').textContent = head.title;
      $('group-sub').textContent = head.sub;
      $('group-play').setAttribute('aria-label', `Play the ${head.kind.toLowerCase()} ${head.title}`);
      this.setCover($('group-cover'), head.id, head.cover);
    }
    const grid = $('grid');
    grid.hidden = !cards;
    $('tracklist').hidden = !!cards;
    $('tracklist-head').hidden = !!cards;
    if (cards) {
      grid.setAttribute('aria-label', view === 'albums' ? 'Albums' : 'Artists');
      grid.replaceChildren(...cards.map((c) => {
        const li = this.d.createElement('li');
        const a = this.d.createElement('a');
        a.href = c.href;
        const title = this.d.createElement('b');
        title.textContent = c.title;
        const sub = this.d.createElement('span');
        sub.className = 'sub';
        sub.textContent = c.sub;
        a.append(this.coverElement('thumb', c.id, c.cover), title, sub);
        li.append(a);
        return li;
      }));
      this.visible = [];
    } else {
      this.visible = list;
      $('tracklist').replaceChildren(...list.map((t, i) => this.row(t, numbered && t.track_no ? t.track_no - 1 : i)));
    }
    const empty = $('empty');
    empty.textContent = cards ? `No ${view === 'albums' ? 'album' : 'artist'} matches.` : 'No track matches.';
    empty.hidden = (cards ? cards.length : list.length) > 0 || this.tracks.length === 0;
  }

  /**
   * A page opened as ?t=<track id> shows that track: its row is scrolled to
   * and focused (playing needs the listener's click).
   */
  showLinkedTrack() {
    const win = this.d.defaultView;
    const id = win ? new URLSearchParams(win.location.search).get('t') : null;
    if (!id) return;
    const row = /** @type {HTMLElement|null} */ (this.d.querySelector(`.track[data-track-id="${CSS.escape(id)}"]`));
    if (!row) return;
    row.classList.add('linked');
    row.scrollIntoView({ block: 'center' });
    row.focus({ preventScroll: true });
  }

  /**
   * @param {TrackSummary} t
   * @param {number} i
   */
  row(t, i) {
    const d = this.d;
    const li = d.createElement('li');
    const b = d.createElement('button');
    b.type = 'button';
    b.className = 'track';
    b.dataset.trackId = t.id;
    b.setAttribute('aria-label', `Play ${t.title} by ${t.artist}`);
    if (t.id === this.player.trackId) b.setAttribute('aria-current', 'true');
    const idx = d.createElement('span');
    idx.className = 'idx';
    idx.textContent = String(i + 1);
    const tt = d.createElement('span');
    tt.className = 't';
    const thumb = this.coverElement('thumb', t.id, t.cover);
    const title = d.createElement('b');
    title.textContent = t.title || '(untitled)';
    if (this.store.isComplete(t.id)) {
      const badge = d.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'cached';
      title.append(badge);
    }
    const artist = d.createElement('span');
    artist.textContent = t.artist || 'Unknown artist';
    tt.append(title, artist);
    const who = d.createElement('span');
    who.className = 'who';
    who.append(thumb, tt);
    const al = d.createElement('span');
    al.className = 'al';
    al.textContent = t.album || '';
    const dur = d.createElement('span');
    dur.className = 'dur num';
    // 0: not known yet (an origin's track before its first play).
    dur.textContent = t.duration_ms > 0 ? formatTime(t.duration_ms / 1000) : '';
    b.append(idx, who, al, dur);
    const add = d.createElement('button');
    add.type = 'button';
    add.className = 'enqueue';
    add.dataset.enqueue = t.id;
    add.textContent = '+';
    add.title = 'Add to up next';
    add.setAttribute('aria-label', `Add ${t.title} to up next`);
    li.append(b, add);
    return li;
  }

  markCached() {
    this.renderList();
  }

  /**
   * Shows in el (an existing tile) the cover coverElement would make.
   * @param {HTMLElement} el
   * @param {string} id
   * @param {string|undefined} sha256
   */
  setCover(el, id, sha256) {
    el.style.setProperty('--hue', `${hue(id)}deg`);
    el.replaceChildren(...this.coverElement('', id, sha256).childNodes);
  }

  /**
   * A cover tile: the track's picture when it has one (sha256 set), over
   * the tile generated from its id, which shows meanwhile and without one.
   * @param {string} className
   * @param {string} id
   * @param {string|undefined} sha256
   */
  coverElement(className, id, sha256) {
    const el = this.d.createElement('span');
    el.className = className;
    el.setAttribute('aria-hidden', 'true');
    el.style.setProperty('--hue', `${hue(id)}deg`);
    if (sha256) {
      const img = this.d.createElement('img');
      img.alt = '';
      img.loading = 'lazy';
      img.decoding = 'async';
      img.src = coverURL(id, sha256);
      img.addEventListener('error', () => img.remove());
      el.append(img);
    }
    return el;
  }

  /** @param {Manifest} m */
  renderTrack(m) {
    const $ = this.$;
    $('now-title').textContent = m.title || '(untitled)';
    $('now-artist').textContent = [m.artist, m.album].filter(Boolean).join(' — ');
    $('pb-title').textContent = m.title || '(untitled)';
    $('pb-artist').textContent = m.artist || '';
    this.setCover($('cover'), m.id, m.cover && m.cover.sha256);
    this.media.setTrack(m, coverURL(m.id, m.cover && m.cover.sha256));
    this.positionAt = 0;
    $('t-dur').textContent = formatTime(durationSec(m));
    this.d.title = `${m.title} — Ztream`;
    for (const row of /** @type {NodeListOf<HTMLElement>} */ (this.d.querySelectorAll('.track'))) {
      if (row.dataset.trackId === m.id) row.setAttribute('aria-current', 'true');
      else row.removeAttribute('aria-current');
    }
    const map = $('chunkmap');
    this.cells = m.chunks.map((c) => {
      const el = this.d.createElement('div');
      el.className = 'c';
      el.dataset.seq = String(c.seq);
      return el;
    });
    this.head = this.d.createElement('div');
    this.head.className = 'head';
    map.replaceChildren(...this.cells, this.head);
    map.classList.toggle('dense', this.cells.length > 60);
    map.dataset.trackId = m.id;
    for (const [seq, c] of this.store.held(m.id)) this.paintChunk(seq, c.source);
    this.renderChunkCount();
    this.renderTime();
  }

  /**
   * @param {number} seq
   * @param {string} source
   */
  paintChunk(seq, source) {
    const el = this.cells[seq];
    if (!el) return;
    el.className = `c src-${source}`;
    el.dataset.source = source;
    this.renderChunkCount();
  }

  renderChunkCount() {
    const id = this.player.trackId;
    if (!id) return;
    this.$('chunk-count').textContent = `${this.store.held(id).size} / ${this.cells.length}`;
  }

  renderPlayState() {
    const btn = this.$('btn-play');
    const playing = !this.player.audio.paused && !this.player.audio.ended && !!this.player.trackId;
    this.media.setPlaying(playing);
    this.media.setPosition(this.player.duration, this.player.currentTime, this.player.audio.playbackRate);
    btn.dataset.state = playing ? 'playing' : 'paused';
    btn.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    btn.title = playing ? 'Pause (space)' : 'Play (space)';
  }

  renderTime() {
    const p = this.player;
    const d = p.duration;
    const t = p.currentTime;
    if (!this.seeking) {
      const bar = /** @type {HTMLInputElement} */ (this.$('seekbar'));
      const v = d > 0 ? Math.round((t / d) * 1000) : 0;
      bar.value = String(v);
      bar.style.setProperty('--p', `${v / 10}%`);
      bar.setAttribute('aria-valuetext', `${formatTime(t)} of ${formatTime(d)}`);
      this.$('t-cur').textContent = formatTime(t);
    }
    if (this.head && d > 0) this.head.style.left = `${Math.min(100, (t / d) * 100)}%`;
    const now = performance.now();
    if (now - this.positionAt > 1000) { // the system extrapolates in between
      this.positionAt = now;
      this.media.setPosition(d, t, p.audio.playbackRate);
    }
    const s = p.session;
    if (s && d > 0) {
      const ahead = s.bufferedAhead();
      this.$('seek-buffer').style.width = `${Math.min(100, ((t + ahead) / d) * 100)}%`;
    }
  }

  renderVolume() {
    const a = this.player.audio;
    const v = a.muted ? 0 : a.volume;
    const vol = /** @type {HTMLInputElement} */ (this.$('volume'));
    vol.value = String(Math.round(v * 100));
    vol.style.setProperty('--p', `${v * 100}%`);
    const mute = this.$('btn-mute');
    mute.setAttribute('aria-pressed', a.muted ? 'true' : 'false');
    mute.setAttribute('aria-label', a.muted ? 'Unmute' : 'Mute');
  }

  scheduleStats() {
    if (this.statsPending) return;
    this.statsPending = true;
    requestAnimationFrame(() => {
      this.statsPending = false;
      this.renderStats();
    });
  }

  renderStats() {
    const s = this.stats;
    const $ = this.$;
    $('st-hub').textContent = formatBytes(s.bytes.hub);
    $('st-peer').textContent = formatBytes(s.bytes.peer);
    $('st-cache').textContent = formatBytes(s.bytes.cache);
    $('st-http').textContent = formatBytes(s.bytes.http);
    $('st-up').textContent = formatBytes(s.uploaded);
    $('st-peers').textContent = String(s.peers);
    $('st-start').textContent = s.lastStartupMs === null ? '–' : `${Math.round(s.lastStartupMs)} ms`;
    const total = s.bytes.hub + s.bytes.http + s.bytes.peer;
    $('st-share').textContent = total === 0 ? '–' : `${Math.round(s.p2pShare * 100)} %`;
  }
}

/**
 * What this page cannot do here, in words for the listener (empty: nothing
 * is missing). Said in one calm line above the library.
 * @param {{cache: boolean, webrtc: boolean, mse?: boolean}} has
 *   mse: false when tracks stream whole from the server (no usable Media Source for MP3)
 * @returns {string}
 */
export function degradedNotice(has) {
  const parts = [];
  if (has.mse === false) parts.push('this browser cannot play tracks piece by piece (no usable Media Source for MP3), so each track streams whole from the server, without other listeners');
  else if (!has.webrtc) parts.push('this browser cannot share music with other listeners (no WebRTC), so it all comes from the server');
  if (!has.cache) parts.push('tracks are not kept after this page closes (no storage for a cache here)');
  if (parts.length === 0) return '';
  const text = parts.join('; ');
  return text[0].toUpperCase() + text.slice(1) + '.';
}

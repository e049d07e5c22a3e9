// The library's shapes: albums and artists grouped from the catalog's tags,
// sorted the way a collector expects, and the page's routes (#/albums,
// #/album/<artist>/<album>, #/artists, #/artist/<name>). No DOM here.

import { fold } from './text.js';

/** @typedef {import('./api.js').TrackSummary} TrackSummary */

/**
 * An album: the tracks sharing an album artist (or artist) and album title.
 * @typedef {object} Album
 * @property {string} key albumKey of its tracks
 * @property {string} title
 * @property {string} artist the album artist, else the artist of its tracks
 * @property {number} year the latest year of its tracks, 0 if none
 * @property {string} coverTrack id of a track whose cover stands for the album ('' if none has one)
 * @property {string} cover that cover's SHA-256
 * @property {TrackSummary[]} tracks in disc, track, title order
 */

/**
 * An artist: the albums and tracks of one album artist (or artist).
 * @typedef {{name: string, albums: Album[], tracks: TrackSummary[]}} Artist
 */

/**
 * The artist an album is filed under.
 * @param {TrackSummary} t
 */
export function albumArtist(t) {
  return t.album_artist || t.artist || 'Unknown artist';
}

/**
 * What identifies t's album: its album artist and title.
 * @param {TrackSummary} t
 */
export function albumKey(t) {
  return `${albumArtist(t)}\u0001${t.album || ''}`;
}

/** Compares strings as a listener reads them: case and accents folded, numbers by value. */
const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

/**
 * Tracks in album order: disc, then track number (unnumbered last), then title.
 * @param {TrackSummary} a
 * @param {TrackSummary} b
 */
export function albumOrder(a, b) {
  return (a.disc_no || 1) - (b.disc_no || 1) ||
    (a.track_no || Infinity) - (b.track_no || Infinity) ||
    collator.compare(a.title, b.title) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Groups tracks into albums, sorted by artist, then year, then title.
 * Tracks without an album tag make no album.
 * @param {TrackSummary[]} tracks
 * @returns {Album[]}
 */
export function groupAlbums(tracks) {
  /** @type {Map<string, Album>} */
  const byKey = new Map();
  for (const t of tracks) {
    if (!t.album) continue;
    const key = albumKey(t);
    let a = byKey.get(key);
    if (!a) {
      a = { key, title: t.album, artist: albumArtist(t), year: 0, coverTrack: '', cover: '', tracks: [] };
      byKey.set(key, a);
    }
    a.tracks.push(t);
    a.year = Math.max(a.year, t.year || 0);
  }
  const albums = [...byKey.values()];
  for (const a of albums) {
    a.tracks.sort(albumOrder);
    const c = a.tracks.find((t) => t.cover);
    if (c) [a.coverTrack, a.cover] = [c.id, /** @type {string} */ (c.cover)];
  }
  return albums.sort((x, y) => collator.compare(x.artist, y.artist) || (x.year || Infinity) - (y.year || Infinity) ||
    collator.compare(x.title, y.title));
}

/**
 * Groups tracks by album artist (or artist), sorted by name; each artist's
 * albums as groupAlbums sorts them, its tracks album by album (tracks
 * without an album last, by title).
 * @param {TrackSummary[]} tracks
 * @returns {Artist[]}
 */
export function groupArtists(tracks) {
  /** @type {Map<string, TrackSummary[]>} */
  const byName = new Map();
  for (const t of tracks) {
    const name = albumArtist(t);
    const list = byName.get(name) || [];
    list.push(t);
    byName.set(name, list);
  }
  return [...byName.entries()].map(([name, list]) => {
    const albums = groupAlbums(list);
    const loose = list.filter((t) => !t.album).sort((a, b) => collator.compare(a.title, b.title));
    return { name, albums, tracks: [...albums.flatMap((a) => a.tracks), ...loose] };
  }).sort((x, y) => collator.compare(x.name, y.name));
}

/**
 * Whether every word of query occurs in one of the texts.
 * @param {string[]} texts
 * @param {string} query
 */
export function matchesAll(texts, query) {
  const words = fold(query).split(/\s+/).filter(Boolean);
  const hay = fold(texts.join(' '));
  return words.every((w) => hay.includes(w));
}

/**
 * A view of the page.
 * @typedef {{view: 'tracks'} | {view: 'albums'} | {view: 'artists'} |
 *   {view: 'album', artist: string, album: string} | {view: 'artist', name: string}} Route
 */

/**
 * Parses a location hash into a route; anything unknown is the track list.
 * @param {string} hash
 * @returns {Route}
 */
export function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/');
  let seg;
  try {
    seg = parts.map((p) => decodeURIComponent(p));
  } catch {
    return { view: 'tracks' };
  }
  switch (seg[0]) {
    case 'albums': return { view: 'albums' };
    case 'artists': return { view: 'artists' };
    case 'album': return seg.length === 3 ? { view: 'album', artist: seg[1], album: seg[2] } : { view: 'albums' };
    case 'artist': return seg.length === 2 ? { view: 'artist', name: seg[1] } : { view: 'artists' };
    default: return { view: 'tracks' };
  }
}

/**
 * The hash of a route (the inverse of parseRoute).
 * @param {Route} r
 */
export function routeHash(r) {
  const e = encodeURIComponent;
  switch (r.view) {
    case 'albums': return '#/albums';
    case 'artists': return '#/artists';
    case 'album': return `#/album/${e(r.artist)}/${e(r.album)}`;
    case 'artist': return `#/artist/${e(r.name)}`;
    default: return '#/';
  }
}

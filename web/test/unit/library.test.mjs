import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupAlbums, groupArtists, albumOrder, parseRoute, routeHash, matchesAll } from '../../js/library.js';

/** A catalog entry with defaults. */
function t(id, title, more = {}) {
  return { id, title, artist: 'Band', album: '', duration_ms: 1000, ...more };
}

test('albums group by album artist and title, sorted by artist, year, title; tracks by disc and number', () => {
  const tracks = [
    t('1', 'Zeta', { album: 'Second', year: 2001, track_no: 1 }),
    t('2', 'Beta', { album: 'First', year: 1999, track_no: 2, disc_no: 1 }),
    t('3', 'Alpha', { album: 'First', year: 1999, track_no: 1, disc_no: 2 }),
    t('4', 'Gamma', { album: 'First', year: 1999, track_no: 1, disc_no: 1, cover: 'c'.repeat(64) }),
    t('5', 'No number', { album: 'First', year: 1999 }),
    t('6', 'Guest song', { album: 'Mix', artist: 'Guest', album_artist: 'Various Artists', track_no: 2 }),
    t('7', 'Other guest', { album: 'Mix', artist: 'Other', album_artist: 'Various Artists', track_no: 1 }),
    t('8', 'Single', {}),
    t('9', 'Early', { album: 'Ábc', artist: 'band', year: 1990 }),
  ];
  const albums = groupAlbums(tracks);
  assert.deepEqual(albums.map((a) => `${a.artist}/${a.title}`), ['band/Ábc', 'Band/First', 'Band/Second', 'Various Artists/Mix']);
  const first = albums[1];
  assert.deepEqual(first.tracks.map((x) => x.id), ['4', '2', '5', '3'], 'disc 1: 1, 2, unnumbered; then disc 2');
  assert.equal(first.cover, 'c'.repeat(64));
  assert.equal(first.coverTrack, '4');
  assert.equal(first.year, 1999);
  assert.deepEqual(albums[3].tracks.map((x) => x.id), ['7', '6'], 'a compilation stays one album under its album artist');
  assert.ok(!albums.some((a) => a.tracks.some((x) => x.id === '8')), 'a track without album makes no album');

  const artists = groupArtists(tracks);
  assert.deepEqual(artists.map((a) => a.name).slice(2), ['Various Artists'], 'sorted by name, case folded');
  assert.deepEqual(artists.map((a) => a.name).slice(0, 2).sort(), ['Band', 'band']);
  const band = artists.find((a) => a.name === 'Band');
  assert.deepEqual(band.tracks.map((x) => x.id), ['4', '2', '5', '3', '1', '8'], 'album by album, loose tracks last');
  assert.ok(albumOrder(tracks[3], tracks[1]) < 0);
});

test('routes survive a round trip through the location hash, names with slashes and accents included', () => {
  const routes = [
    { view: 'tracks' }, { view: 'albums' }, { view: 'artists' },
    { view: 'album', artist: 'AC/DC', album: 'Back in Black #1 & co' },
    { view: 'artist', name: 'Sigur Rós' },
  ];
  for (const r of routes) assert.deepEqual(parseRoute(routeHash(r)), r);
  assert.deepEqual(parseRoute(''), { view: 'tracks' });
  assert.deepEqual(parseRoute('#/nonsense/x'), { view: 'tracks' });
  assert.deepEqual(parseRoute('#/album/only-one'), { view: 'albums' });
  assert.deepEqual(parseRoute('#/artist/%E0%A4%A'), { view: 'tracks' }, 'a malformed escape');
});

test('matchesAll needs every word, folded', () => {
  assert.ok(matchesAll(['Sigur Rós', 'Ágætis byrjun'], 'ros agaetis'.replace('ae', 'æ')));
  assert.ok(matchesAll(['Sigur Rós'], ''));
  assert.ok(!matchesAll(['Sigur Rós'], 'ros blur'));
});

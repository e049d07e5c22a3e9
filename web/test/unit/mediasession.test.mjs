import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MediaSessionBridge, SEEK_STEP } from '../../js/mediasession.js';
import { coverURL } from '../../js/api.js';

/** A navigator whose mediaSession records what the page sets. */
function fakeNavigator({ rejectAction = '' } = {}) {
  /** @type {Map<string, Function>} */
  const handlers = new Map();
  const positions = [];
  const ms = {
    metadata: null,
    playbackState: 'none',
    setActionHandler(action, fn) {
      if (action === rejectAction) throw new TypeError(`unknown action ${action}`);
      handlers.set(action, fn);
    },
    setPositionState(s) { positions.push(s); },
  };
  return { nav: { mediaSession: ms }, ms, handlers, positions };
}

class FakeMetadata {
  constructor(init) { Object.assign(this, init); }
}

test('the Media Session shows the track and its cover, and its actions drive the player', () => {
  globalThis.MediaMetadata = /** @type {any} */ (FakeMetadata);
  try {
    const { nav, ms, handlers, positions } = fakeNavigator({ rejectAction: 'seekforward' });
    const calls = [];
    let pos = 30;
    const bridge = new MediaSessionBridge(/** @type {any} */ (nav), {
      play: () => calls.push('play'),
      pause: () => calls.push('pause'),
      next: () => calls.push('next'),
      previous: () => calls.push('previous'),
      seekTo: (t) => { calls.push(`seek ${t}`); pos = t; },
      position: () => pos,
    });
    // An action the browser refuses does not stop the others.
    assert.deepEqual([...handlers.keys()].sort(), ['nexttrack', 'pause', 'play', 'previoustrack', 'seekbackward', 'seekto']);
    handlers.get('play')();
    handlers.get('pause')();
    handlers.get('nexttrack')();
    handlers.get('previoustrack')();
    handlers.get('seekto')({ seekTime: 42 });
    handlers.get('seekbackward')({});
    handlers.get('seekbackward')({ seekOffset: 100 });
    assert.deepEqual(calls, ['play', 'pause', 'next', 'previous', 'seek 42', `seek ${42 - SEEK_STEP}`, 'seek 0']);

    const id = '0123456789abcdef0123456789abcdef';
    const sha = 'ab'.repeat(32);
    bridge.setTrack({ title: 'Song', artist: 'Band', album: 'Album', cover: { mime: 'image/jpeg' } }, coverURL(id, sha));
    assert.equal(ms.metadata.title, 'Song');
    assert.equal(ms.metadata.album, 'Album');
    assert.deepEqual(ms.metadata.artwork, [{ src: `/api/tracks/${id}/cover?v=${sha}`, type: 'image/jpeg' }]);
    bridge.setTrack({ title: '', artist: 'Band', album: '' }, coverURL(id, undefined));
    assert.equal(ms.metadata.title, '(untitled)');
    assert.deepEqual(ms.metadata.artwork, [], 'no cover: no artwork');

    bridge.setPlaying(true);
    assert.equal(ms.playbackState, 'playing');
    bridge.setPosition(100, 120, 1);
    bridge.setPosition(Infinity, 3, 1);
    bridge.setPosition(0, 3, 1);
    assert.deepEqual(positions, [{ duration: 100, position: 100, playbackRate: 1 }], 'clamped; unknown durations skipped');
  } finally {
    delete globalThis.MediaMetadata;
  }
});

test('without a Media Session nothing breaks', () => {
  const bridge = new MediaSessionBridge(/** @type {any} */ ({}), {
    play() {}, pause() {}, next() {}, previous() {}, seekTo() {}, position: () => 0,
  });
  bridge.setTrack({ title: 'x', artist: '', album: '' }, '');
  bridge.setPlaying(false);
  bridge.setPosition(10, 1, 1);
});

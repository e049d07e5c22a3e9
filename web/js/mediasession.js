// The Media Session bridge: what the operating system shows for the page
// (lock screen, media keys, notification) and the actions it sends back.

/**
 * @typedef {object} MediaActions
 * @property {() => void} play
 * @property {() => void} pause
 * @property {() => void} next
 * @property {() => void} previous
 * @property {(seconds: number) => void} seekTo
 * @property {() => number} position current time, seconds
 */

/** Seconds a seekbackward/seekforward moves without an offset from the system. */
export const SEEK_STEP = 10;

export class MediaSessionBridge {
  /**
   * @param {Navigator} nav the page's navigator (no-op where it has no mediaSession)
   * @param {MediaActions} actions
   */
  constructor(nav, actions) {
    /** @type {MediaSession|null} */
    this.ms = 'mediaSession' in nav ? nav.mediaSession : null;
    if (!this.ms) return;
    /** @type {[MediaSessionAction, MediaSessionActionHandler][]} */
    const handlers = [
      ['play', () => actions.play()],
      ['pause', () => actions.pause()],
      ['nexttrack', () => actions.next()],
      ['previoustrack', () => actions.previous()],
      ['seekto', (d) => { if (typeof d.seekTime === 'number') actions.seekTo(d.seekTime); }],
      ['seekbackward', (d) => actions.seekTo(Math.max(0, actions.position() - (d.seekOffset || SEEK_STEP)))],
      ['seekforward', (d) => actions.seekTo(actions.position() + (d.seekOffset || SEEK_STEP))],
    ];
    for (const [action, handler] of handlers) {
      try {
        this.ms.setActionHandler(action, handler);
      } catch {
        // An action this browser does not know.
      }
    }
  }

  /**
   * Shows a track: title, artist, album and its cover (if any).
   * @param {{title: string, artist: string, album: string, cover?: {mime: string}}} m
   * @param {string} cover the cover's URL, '' without
   */
  setTrack(m, cover) {
    if (!this.ms || typeof MediaMetadata === 'undefined') return;
    this.ms.metadata = new MediaMetadata({
      title: m.title || '(untitled)',
      artist: m.artist || '',
      album: m.album || '',
      artwork: cover ? [{ src: cover, type: m.cover ? m.cover.mime : '' }] : [],
    });
  }

  /** @param {boolean} playing */
  setPlaying(playing) {
    if (this.ms) this.ms.playbackState = playing ? 'playing' : 'paused';
  }

  /**
   * Keeps the system's position current (a no-op for unknown durations).
   * @param {number} duration seconds
   * @param {number} position seconds
   * @param {number} rate
   */
  setPosition(duration, position, rate) {
    if (!this.ms || !this.ms.setPositionState || !(duration > 0) || !Number.isFinite(duration)) return;
    try {
      this.ms.setPositionState({ duration, position: Math.min(Math.max(position, 0), duration), playbackRate: rate || 1 });
    } catch {
      // A rejected state (rate 0 while paused in some engines) changes nothing shown.
    }
  }
}

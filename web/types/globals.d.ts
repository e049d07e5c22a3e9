// Ambient declarations for the type check of web/js (make lint-js, tsc -p
// web/jsconfig.json). Type information only: nothing here is served (web.go
// embeds index.html, css/ and js/ only) and the client does not import it.

export {};

declare global {
  /**
   * Safari's ManagedMediaSource (iOS has no MediaSource): same interface as
   * MediaSource for what player.js uses. Not in TypeScript's lib.dom yet.
   */
  var ManagedMediaSource: typeof MediaSource | undefined;

  /** Verbose loader logging, switched on by ?debug=1 (app.js). */
  var ZDEBUG: boolean | undefined;

  interface Window {
    /** The automation API of app.js (end-to-end tests, debugging). */
    ztream?: object;
  }
}

// Timer handles are kept as `number | null` (null: no timer). WebIDL converts
// null to 0, an id no timer has, so clearing null is a no-op in every browser;
// lib.dom only admits `number | undefined`.
declare global {
  function clearTimeout(id: number | null | undefined): void;
  function clearInterval(id: number | null | undefined): void;
}

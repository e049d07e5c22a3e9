import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SessionStats } from '../../js/stats.js';

/** The json tags of signaling.Stats, read from the Go source (the hub decodes what the page sends with it). */
function goStatsFields() {
  const src = readFileSync(new URL('../../../signaling/messages.go', import.meta.url), 'utf8');
  const body = src.match(/type Stats struct \{([\s\S]*?)\n\}/);
  assert.ok(body, 'signaling.Stats found');
  return [...body[1].matchAll(/json:"([a-z_]+)[,"]/g)].map((m) => m[1]).sort();
}

test('the stats message has exactly the fields of signaling.Stats', () => {
  const s = new SessionStats();
  s.received('hub', 1);
  s.received('http', 2);
  s.received('peer', 3);
  s.relayed(2);
  s.received('cache', 4);
  s.uploadedBytes(5);
  s.badChunk();
  s.stall();
  s.emergencyFetches = 6;
  s.startup(120);
  const d = s.drainDelta();
  assert.deepEqual(Object.keys(d).sort(), goStatsFields());
  assert.deepEqual(d, {
    hub_bytes: 3, peer_bytes: 3, relay_bytes: 2, cache_bytes: 4, uploaded_bytes: 5, bad_chunks: 1, stalls: 1,
    emergency_fetches: 6, startup_ms: [120],
  });
  // Deltas: nothing new, nothing reported; startup_ms is omitted when empty (omitempty in Go).
  const d2 = s.drainDelta();
  assert.ok(Object.values(d2).every((v) => v === 0));
  assert.ok(!('startup_ms' in d2));
});

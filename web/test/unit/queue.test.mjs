import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue, QUEUE_KEY } from '../../js/queue.js';

/** A Storage that keeps items in a Map. */
function memStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), map: m };
}

/** A deterministic rand. */
function seq(...xs) {
  let i = 0;
  return () => xs[i++ % xs.length];
}

test('next and previous follow the queue; repeat all wraps, off stops, one replays at the end of a track', () => {
  const q = new Queue();
  q.start(['a', 'b', 'c'], 1);
  assert.equal(q.current(), 'b');
  assert.equal(q.next(), 'c');
  assert.equal(q.next(), 'a', 'repeat all (the default) wraps');
  assert.equal(q.prev(), 'c');
  q.cycleRepeat(); // all → one
  assert.equal(q.repeat, 'one');
  assert.equal(q.next(true), 'c', 'repeat one replays a track that ended');
  assert.equal(q.next(), 'a', 'a listener\'s next still moves on');
  q.cycleRepeat(); // one → off
  q.start(['a', 'b'], 1);
  assert.equal(q.peekNext(), null);
  assert.equal(q.next(), null, 'repeat off ends the queue');
  assert.equal(q.current(), 'b');
  q.start(['a', 'b'], 0);
  assert.equal(q.prev(), null);
});

test('up next, remove and move keep the track playing', () => {
  const q = new Queue();
  q.start(['a', 'b', 'c', 'd'], 1);
  q.addNext(['x', 'y']);
  assert.deepEqual(q.upNext(), ['x', 'y', 'c', 'd']);
  q.move(5, 0); // d to the front, before the one playing
  assert.deepEqual(q.ids, ['d', 'a', 'b', 'x', 'y', 'c']);
  assert.equal(q.current(), 'b');
  q.move(2, 4); // the one playing moves
  assert.equal(q.current(), 'b');
  assert.deepEqual(q.ids, ['d', 'a', 'x', 'y', 'b', 'c']);
  q.remove(4); // the one playing: it plays on, next is what followed it
  assert.equal(q.next(), 'c');
  q.remove(0);
  assert.equal(q.current(), 'c');
  q.move(-1, 2);
  q.remove(99);
  assert.deepEqual(q.ids, ['a', 'x', 'y', 'c']);
});

test('shuffle keeps the track playing first and the rest in random order; off restores the order', () => {
  const q = new Queue({ rand: seq(0, 0.99, 0.5, 0.2) });
  q.start(['a', 'b', 'c', 'd', 'e'], 2);
  q.setShuffle(true);
  assert.equal(q.current(), 'c');
  assert.deepEqual([...q.ids].sort(), ['a', 'b', 'c', 'd', 'e']);
  assert.equal(q.ids.slice(0, q.index + 1).pop(), 'c');
  q.next();
  const playing = q.current();
  q.setShuffle(false);
  assert.deepEqual(q.ids, ['a', 'b', 'c', 'd', 'e']);
  assert.equal(q.current(), playing);
  // Starting a queue with shuffle on: the chosen track first.
  q.setShuffle(true);
  q.start(['a', 'b', 'c', 'd'], 3);
  assert.equal(q.index, 0);
  assert.equal(q.current(), 'd');
  assert.deepEqual([...q.ids].sort(), ['a', 'b', 'c', 'd']);
});

test('the queue survives a reload, minus tracks the library lost; a corrupt save is ignored', () => {
  const storage = memStorage();
  const q = new Queue({ storage });
  q.start(['a', 'b', 'c'], 1);
  q.cycleRepeat();
  const r = new Queue({ storage });
  r.restore((id) => id !== 'a');
  assert.deepEqual(r.state(), { ids: ['b', 'c'], index: 0, shuffle: false, repeat: 'one' });
  storage.setItem(QUEUE_KEY, '{not json');
  const c = new Queue({ storage });
  c.restore(() => true);
  assert.deepEqual(c.state(), { ids: [], index: -1, shuffle: false, repeat: 'all' });
});

test('tracks the library lost leave the queue; if the one playing went, next is what followed it', () => {
  const storage = memStorage();
  const q = new Queue({ storage });
  q.start(['a', 'b', 'c', 'd', 'e'], 2);
  const r = new Queue({ storage });
  r.restore((id) => id !== 'c' && id !== 'a');
  assert.deepEqual(r.ids, ['b', 'd', 'e']);
  assert.deepEqual(r.upNext(), ['d', 'e'], 'what was played stays behind');
  assert.equal(r.next(), 'd');
  r.retain((id) => id !== 'e');
  assert.deepEqual(r.ids, ['b', 'd']);
  assert.equal(r.current(), 'd');
});

test('removing the track playing: next goes to what followed it', () => {
  const q = new Queue();
  q.start(['a', 'b', 'c', 'd'], 1);
  q.remove(1);
  assert.equal(q.next(), 'c');
});

test('a list longer than the bound queues the window around the track chosen', () => {
  const ids = Array.from({ length: 12000 }, (_, i) => `t${i}`);
  const q = new Queue();
  q.start(ids, 11000);
  assert.equal(q.current(), 't11000');
  assert.equal(q.ids.length, 10000);
  q.start(ids, 3);
  assert.equal(q.current(), 't3');
});

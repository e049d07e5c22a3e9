import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LRUIndex, DEFAULT_BUDGET } from '../../js/lru.js';

function clock() {
  let t = 1000;
  return () => t++;
}

test('default budget is 500 MB', () => {
  assert.equal(DEFAULT_BUDGET, 500e6);
  assert.equal(new LRUIndex().budget, 500e6);
  assert.throws(() => new LRUIndex(0));
});

test('victims: least recently used first, just enough to fit', () => {
  const l = new LRUIndex(100, clock());
  l.add('a', 40);
  l.add('b', 30);
  l.add('c', 20);
  assert.equal(l.size, 90);
  assert.deepEqual(l.victims(10), [], 'fits exactly');
  assert.deepEqual(l.victims(11), ['a']);
  l.touch('a');
  assert.deepEqual(l.victims(11), ['b']);
  assert.deepEqual(l.victims(45), ['b', 'c']);
  assert.deepEqual(l.victims(45, new Set(['b'])), ['c', 'a'], 'pinned keys are skipped');
  assert.deepEqual(l.victims(1000), ['b', 'c', 'a'], 'everything when it cannot fit');
});

test('add grows an entry; delete forgets it', () => {
  const l = new LRUIndex(100, clock());
  l.add('a', 10);
  l.add('a', 15);
  assert.equal(l.size, 25);
  assert.ok(l.delete('a'));
  assert.ok(!l.delete('a'));
  assert.equal(l.size, 0);
  assert.throws(() => l.add('x', -1));
});

test('toJSON/load round trip keeps the order', () => {
  const l = new LRUIndex(100, clock());
  l.add('a', 10);
  l.add('b', 20);
  l.touch('a');
  const l2 = new LRUIndex(25, () => 0);
  l2.load(JSON.parse(JSON.stringify(l)));
  assert.equal(l2.size, 30);
  assert.deepEqual(l2.victims(0), ['b']);
  l2.add('c', 1);
  assert.deepEqual(l2.victims(0), ['b'], 'stamps stay increasing after load even with a stale clock');
  l2.load([{ key: 7, size: 3 }, { key: 'd', size: -1 }]);
  assert.equal(l2.size, 31, 'bad entries ignored');
});

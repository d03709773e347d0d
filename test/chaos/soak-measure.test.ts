/**
 * The soak's arithmetic (bench/soak.ts): its verdict compares the tops of the RSS saw-tooth in
 * the first and the last third after the warm-up, and its "inside" table says, from each
 * process's own reports, whether what rose was the V8 heap's teeth or memory that stays.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MemoryBreakdown, SampleRow } from '../../bench/memory.js';
import { growthOf, insideOf } from '../../bench/soak.js';

const row = (at_s: number, coordinator: number): SampleRow => ({ at_s, rss: { coordinator } });

describe('soak: growthOf', () => {
  it('compares the highest RSS of the last third after the warm-up with that of the first', () => {
    // warm-up 60 s (ignored, however high), then 9 samples: thirds 70–90, 100–120, 130–150
    const rows = [
      row(0, 500),
      row(60, 400),
      ...[100, 120, 100, 100, 100, 100, 100, 131, 100].map((v, i) => row(70 + 10 * i, v)),
    ];
    const { growth, ok } = growthOf(rows, 60, 10);
    assert.equal(growth[0]!.baseline_mb, 120);
    assert.equal(growth[0]!.end_mb, 131);
    assert.equal(growth[0]!.growth_pct, 9.2);
    assert.equal(ok, true);
    const taller = [...rows.slice(0, -1), row(150, 133)];
    assert.equal(growthOf(taller, 60, 10).ok, false, '133 over 120 is 10.8 %');
  });
});

describe('soak: insideOf', () => {
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  const report = (s: number, heap_used: number, heap_total: number, other: number): MemoryBreakdown => ({
    pid: 1,
    at: new Date(t0 + s * 1000).toISOString(),
    rss: heap_total + other + 10,
    heap_total,
    heap_used,
    external: 10,
    array_buffers: 1,
    wasm_memory: 0,
    other,
  });

  it('a taller tooth shows in the committed heap only; memory that stays shows in the rest', () => {
    const reports = [
      report(30, 10, 200, 99), // warm-up: ignored
      report(70, 50, 100, 60),
      report(90, 45, 120, 61),
      report(110, 60, 110, 61), // middle third: ignored
      report(140, 48, 190, 70),
      report(150, 47, 100, 80),
    ];
    assert.deepEqual(insideOf('coordinator', reports, t0, 60, 150), {
      process: 'coordinator',
      heap_used_min_mb: [45, 47],
      heap_total_max_mb: [120, 190],
      other_max_mb: [61, 80],
    });
  });

  it('says nothing when a third has no report (a process that wrote none, a run too short)', () => {
    assert.equal(insideOf('signer_1', [], t0, 60, 150), undefined);
    assert.equal(insideOf('signer_1', [report(70, 1, 2, 3)], t0, 60, 150), undefined);
  });
});

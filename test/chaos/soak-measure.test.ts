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

describe('soak: growthOf, the Postgres server', () => {
  const pgRow = (at_s: number, backends: Record<string, number>): SampleRow => ({
    at_s,
    rss: { coordinator: 100 },
    postgres_backend_max_mb: Math.max(...Object.values(backends)),
    postgres_private_mb: Object.values(backends).reduce((a, b) => a + b, 0),
    postgres_backends_mb: backends,
  });

  it('judges each backend alive in both thirds, not whichever backend is largest', () => {
    // thirds 70–90, 100–120, 130–150: backend 11 lives throughout and stays flat; 12 closes in
    // the middle third; 13 opens late, larger than anyone before it
    const rows = [
      pgRow(70, { 11: 6.4, 12: 6.0 }),
      pgRow(80, { 11: 6.4, 12: 6.1 }),
      pgRow(90, { 11: 6.4, 12: 6.1 }),
      pgRow(100, { 11: 6.4 }),
      pgRow(110, { 11: 6.4 }),
      pgRow(120, { 11: 6.5 }),
      pgRow(130, { 11: 6.5, 13: 7.5 }),
      pgRow(140, { 11: 6.5, 13: 7.5 }),
      pgRow(150, { 11: 6.5, 13: 7.5 }),
    ];
    const { growth, ok } = growthOf(rows, 60, 10);
    const by = new Map(growth.map((g) => [g.process, g]));
    assert.equal(ok, true);
    assert.deepEqual(
      {
        growth_pct: by.get('postgres_backend 11')?.growth_pct,
        checked: by.get('postgres_backend 11')?.checked,
      },
      { growth_pct: 1.6, checked: true },
    );
    assert.equal(by.get('postgres_backend_max')?.growth_pct, 17.2);
    assert.equal(by.get('postgres_backend_max')?.checked, false);
    assert.equal(by.has('postgres_backend 12'), false, 'only the backend that grew most is reported');
    assert.equal(by.has('postgres_backend 13'), false);

    // the same backend 11 growing past 10 % fails the run
    const leaking = rows.map((r) =>
      r.at_s >= 130 ? pgRow(r.at_s, { ...r.postgres_backends_mb, 11: 7.2 }) : r,
    );
    const g = growthOf(leaking, 60, 10);
    assert.equal(g.ok, false);
    assert.equal(
      g.growth.find((x) => x.checked && x.process.startsWith('postgres_backend '))?.growth_pct,
      12.5,
    );
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

/**
 * `floe audit verify`: walks the tenant's audit chain through GET /v1/audit, page by page, with
 * the same check the database's trigger writes (src/domain/audit-chain.ts), and reports the
 * first break (row id, expected vs found). Exits 1 on a break.
 */
import type { Command } from 'commander';
import { AuditChainWalk, type ChainedAuditRow } from '../domain/audit-chain.js';
import { type ClientOpts, client, clientOptions, run } from './client-commands.js';
import { emit, fields } from './output.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  clientOptions(
    audit.command('verify').description("walk the tenant's audit hash chain and report the first break"),
  ).action(
    run(async (o: ClientOpts) => {
      const api = client(o);
      const walk = new AuditChainWalk();
      let after = 0;
      for (;;) {
        const page = await api.request<{ items: ChainedAuditRow[]; next_after: number | null }>(
          'GET',
          '/v1/audit',
          {
            query: { after, limit: 1000 },
          },
        );
        if (walk.push(page.items) || page.next_after === null) break;
        after = page.next_after;
      }
      const b = walk.broken;
      const report = b
        ? { ok: false, checked: walk.checked, break: b }
        : { ok: true, checked: walk.checked, head: walk.lastHash };
      emit(Boolean(o.json), report, () =>
        b
          ? `audit chain BROKEN at row ${b.id} (${b.field}): expected ${b.expected}, found ${b.found}\n` +
            `${walk.checked} rows before it verify`
          : fields([
              ['audit chain', 'intact'],
              ['rows', walk.checked],
              ['head', walk.lastHash],
            ]),
      );
      if (b) process.exitCode = 1;
    }),
  );
}

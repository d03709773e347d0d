/** `floe webhook add|list|remove|rotate`: a tenant's webhooks (docs/webhooks.md). */
import type { Command } from 'commander';
import type { WebhookObject, WebhookWithSecret } from '../protocol/api.js';
import { type ClientOpts, client, clientOptions, run } from './client-commands.js';
import { emit, fields, table, when } from './output.js';

const secretLines = (w: WebhookWithSecret) =>
  `${fields([
    ['id', w.webhook.id],
    ['url', w.webhook.url],
    ['events', w.webhook.events.join(', ')],
    ['secret', w.secret],
  ])}\nthe secret is shown this once: keep it where the receiver verifies Floe-Signature`;

export function registerWebhookCommands(program: Command): void {
  const webhook = program.command('webhook').description('webhooks of your tenant (docs/webhooks.md)');
  clientOptions(
    webhook
      .command('add')
      .description('send events to a URL; prints the signing secret once')
      .argument('<url>', 'http(s) URL')
      .requiredOption(
        '--events <list>',
        'comma-separated: session.completed, session.failed, approval.pending, key.active, signer.quarantined',
      )
      .option('--description <text>', 'what it is for'),
  ).action(
    run(async (url: string, o: ClientOpts & { events: string; description?: string }) => {
      const events = o.events
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const w = await client(o).request<WebhookWithSecret>('POST', '/v1/webhooks', {
        body: { url, events, ...(o.description ? { description: o.description } : {}) },
      });
      emit(Boolean(o.json), w, () => secretLines(w));
    }),
  );
  clientOptions(webhook.command('list').description('the webhooks of your tenant')).action(
    run(async (o: ClientOpts) => {
      const { items } = await client(o).request<{ items: WebhookObject[] }>('GET', '/v1/webhooks');
      emit(Boolean(o.json), items, () =>
        items.length
          ? table(
              ['ID', 'URL', 'EVENTS', 'CREATED'],
              items.map((w) => [w.id, w.url, w.events.join(','), when(w.created_at)]),
            )
          : 'no webhooks',
      );
    }),
  );
  clientOptions(
    webhook.command('remove').description('delete a webhook').argument('<id>', 'webhook id'),
  ).action(
    run(async (id: string, o: ClientOpts) => {
      await client(o).request('DELETE', `/v1/webhooks/${encodeURIComponent(id)}`);
      emit(Boolean(o.json), { removed: id }, () => `removed ${id}`);
    }),
  );
  clientOptions(
    webhook
      .command('rotate')
      .description('a new signing secret; the old one still signs during the grace period (24 h)')
      .argument('<id>', 'webhook id'),
  ).action(
    run(async (id: string, o: ClientOpts) => {
      const w = await client(o).request<WebhookWithSecret>(
        'POST',
        `/v1/webhooks/${encodeURIComponent(id)}/rotate-secret`,
      );
      emit(Boolean(o.json), w, () => secretLines(w));
    }),
  );
}

/**
 * The operator dashboard (issue 15 item 11, docs/dashboard.md): static HTML, CSS and plain ES
 * modules from ./assets, served at `/` and `/dashboard/*`. The browser does everything through
 * the JSON API with an access token it keeps in sessionStorage; this plugin only serves files.
 *
 * The files are read once, when the plugin registers, and served from memory with an ETag, a
 * strict Content-Security-Policy (no inline script, nothing from another origin, Trusted Types
 * so that no string can reach an HTML sink) and nosniff. The routes are hidden from OpenAPI.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { packageFolder } from '../../config/package-root.js';
import { FloeError } from '../../protocol/errors.js';

/** The dashboard's policy: only its own files, no inline code, not framable. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types',
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Where the assets are. From src (tsx) they sit beside this file; `tsc` copies no other files
 * to dist/, so the compiled plugin (dist/coordinator/dashboard/plugin.js) and the bundle
 * (dist/bundle/) read them from the sources under the package root, which the package ships
 * ("files": ["src", …]; ../../config/package-root.ts).
 */
export function assetDirectory(moduleUrl: string = import.meta.url): string {
  const { found, candidates } = packageFolder(
    moduleUrl,
    'assets',
    ['coordinator', 'dashboard', 'assets'],
    'index.html',
  );
  if (!found) throw new Error(`dashboard assets not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** Every servable file under `dir`, by its path relative to it ('/'-separated). */
function readAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const type = CONTENT_TYPES[extname(name)];
        if (!type) continue;
        const body = readFileSync(p);
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        out.set(relative(dir, p).split(sep).join('/'), { body, type, etag });
      }
    }
  };
  walk(dir);
  return out;
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset) {
  reply
    .header('content-type', a.type)
    // Revalidated on every load (the names carry no hash), cheap with the ETag.
    .header('cache-control', 'no-cache')
    .header('etag', a.etag)
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.send(a.body);
}

export const dashboardPlugin: FastifyPluginAsync<{ dir?: string }> = async (app, o) => {
  const assets = readAssets(o.dir ?? assetDirectory());
  const index = assets.get('index.html')!;
  const hide = { schema: { hide: true } };
  app.get('/', hide, (req, reply) => send(req, reply, index));
  app.get<{ Params: { '*': string } }>('/dashboard/*', hide, (req, reply) => {
    const a = assets.get(req.params['*']);
    if (!a) throw new FloeError('not_found', 'no such dashboard file');
    return send(req, reply, a);
  });
};

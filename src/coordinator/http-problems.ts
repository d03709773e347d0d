/**
 * The problems the HTTP layer itself raises, before any route runs, in words a person acts
 * on: a request that fails the contract names the field and says what is expected (from the
 * field's schema: its form and its description); a known path with another method is 405
 * with `Allow`; an unknown path is the generic `not_found`. Never echoes a value sent.
 */
import { ID_PATTERN } from '../domain/ids.js';
import { TENANT_ID_PATTERN } from '../protocol/api.js';
import { type Problem, problemOf } from '../protocol/errors.js';

// ---------------------------------------------------------------- validation (invalid_request)

/** The parts of a JSON Schema this file reads. */
interface Schema {
  type?: string | string[];
  description?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  minProperties?: number;
}

/** One Ajv error, with `verbose` on (fastify's ajv customOptions in ../http.ts). */
export interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: Schema;
  data?: unknown;
}

const CONTEXT_WORDS: Record<string, string> = {
  body: 'body field',
  querystring: 'query parameter',
  params: 'path parameter',
  headers: 'header',
};

/** `/items/0/message` → `items[0].message`. */
export function fieldName(instancePath: string): string {
  let out = '';
  for (const part of instancePath.split('/').slice(1)) {
    const p = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  }
  return out;
}

/** `1 to 64`, `at least 2`, `at most 200`, `exactly 3`; '' for no bounds. */
function range(lo: number | undefined, hi: number | undefined): string {
  if (lo !== undefined && hi !== undefined) return lo === hi ? `exactly ${lo}` : `${lo} to ${hi}`;
  if (lo !== undefined) return `at least ${lo}`;
  if (hi !== undefined) return `at most ${hi}`;
  return '';
}

function patternWords(pattern: string): string {
  const hex = /^\^\[0-9a-f(A-F)?\]\{(\d+)\}\$$/.exec(pattern);
  if (hex) {
    const n = Number(hex[2]);
    const upper = hex[1] ? ', upper case accepted' : ' lower case';
    return `${n / 2} bytes as ${n} hex characters (0-9, a-f${upper}; no 0x prefix)`;
  }
  if (pattern === '^(?:[0-9a-f]{2})*$') return 'hex characters (0-9, a-f lower case), an even number of them';
  if (pattern === ID_PATTERN) return 'an id: 1 to 64 letters, digits, _ or -';
  if (pattern === TENANT_ID_PATTERN)
    return 'an id: 1 to 64 letters, digits, _ or -, starting with a letter or digit';
  if (pattern === '^https?://') return 'an http:// or https:// URL';
  return `text matching ${pattern}`;
}

/** What a schema accepts, in words. */
export function expectedWords(s: Schema): string {
  const union = s.anyOf ?? s.oneOf;
  if (union) {
    const consts = union.filter((b) => b.const !== undefined).map((b) => String(b.const));
    const others = union.filter((b) => b.const === undefined && b.type !== 'null').map(expectedWords);
    const nullable = union.some((b) => b.type === 'null');
    const parts = [...(consts.length ? [`one of ${consts.join(', ')}`] : []), ...others];
    return `${parts.join(' or ')}${nullable ? ' or null' : ''}`;
  }
  if (s.const !== undefined) return JSON.stringify(s.const);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string': {
      if (s.pattern) return patternWords(s.pattern);
      const len = range(s.minLength, s.maxLength);
      return len ? `text of ${len} characters` : 'text';
    }
    case 'integer':
    case 'number': {
      const r = range(s.minimum, s.maximum);
      const what = type === 'integer' ? 'an integer' : 'a number';
      return r ? `${what} ${/^\d/.test(r) ? `from ${r}` : r}` : what;
    }
    case 'boolean':
      return 'true or false';
    case 'array': {
      const r = range(s.minItems, s.maxItems);
      const n = r && `${r} items`;
      const of = s.items ? ` of ${expectedWords(s.items)}` : '';
      return `a list${n ? ` (${n}${s.uniqueItems ? ', no repeats' : ''})` : ''}${of}`;
    }
    case 'object':
      return s.properties ? `an object with ${Object.keys(s.properties).join(', ')}` : 'an object';
    case 'null':
      return 'null';
    default:
      return 'a valid value';
  }
}

/** `words — description`, the description when there is one. */
function expectation(s: Schema | undefined): string {
  if (!s) return 'a valid value';
  const words = expectedWords(s);
  return s.description && !words.includes(s.description) ? `${words} — ${s.description}` : words;
}

const shortName = (name: string) => (name.length > 64 ? `${name.slice(0, 64)}…` : name);

/**
 * A request that failed its schema, as a problem naming the field and saying what it
 * expects. `context` is fastify's validationContext (body, querystring, params, headers).
 */
export function validationProblem(context: string | undefined, errors: readonly AjvError[]): Problem {
  const where = CONTEXT_WORDS[context ?? 'body'] ?? 'field';
  // A union's failure comes last, after one error per branch: the union says it best.
  const err = errors.find((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf') ?? errors[0];
  if (!err) return problemOf('invalid_request', `the request ${context ?? 'body'} is not valid`);
  const parent = err.parentSchema;
  const field = fieldName(err.instancePath);
  const at = (name: string) => (field ? `${field}.${name}` : name);

  switch (err.keyword) {
    case 'required': {
      const missing = String(err.params.missingProperty ?? '');
      return problemOf('invalid_request', `${where} ${at(missing)} is missing`, {
        field: at(missing),
        hint: `${at(missing)} is required: ${expectation(parent?.properties?.[missing])}`,
      });
    }
    case 'additionalProperties': {
      const extra = shortName(String(err.params.additionalProperty ?? ''));
      const known = Object.keys(parent?.properties ?? {});
      return problemOf('invalid_request', `unknown ${where} ${at(extra)}`, {
        field: at(extra),
        hint: known.length
          ? `${field ? `${field} takes` : 'known fields are'} ${known.join(', ')} (check the spelling; fields are snake_case)`
          : `${field || context || 'this'} takes no fields`,
      });
    }
    case 'minProperties':
      return problemOf(
        'invalid_request',
        `the ${context ?? 'body'} ${field ? `field ${field} ` : ''}is empty`,
        {
          ...(field ? { field } : {}),
          hint: `give at least one of ${Object.keys(parent?.properties ?? {}).join(', ')}`,
        },
      );
    case 'type':
      if (!field && context === 'body') {
        return problemOf('invalid_request', 'the body is not a JSON object', {
          hint: `send a JSON object: ${expectation(parent)}`,
        });
      }
  }
  const name = field || (context ?? 'body');
  let hint = `${name}: ${expectation(parent)}`;
  if (err.keyword === 'pattern' && typeof err.data === 'string' && /^0x/i.test(err.data)) {
    hint += ' (drop the 0x prefix)';
  }
  return problemOf(
    'invalid_request',
    `${where} ${name} is not valid: expected ${expectedWords(parent ?? {})}`,
    {
      field: name,
      hint,
    },
  );
}

// ---------------------------------------------------------------- 404 and 405

/** The methods of every route, by path pattern, to tell an unknown path from a wrong method. */
export class RouteMethods {
  private readonly routes: { re: RegExp; methods: Set<string> }[] = [];
  private readonly byUrl = new Map<string, Set<string>>();

  /** Record a route (fastify's onRoute hook): `:param` matches one segment, `*` the rest. */
  add(method: string | readonly string[], url: string): void {
    let methods = this.byUrl.get(url);
    if (!methods) {
      methods = new Set();
      this.byUrl.set(url, methods);
      const re = url
        .split('/')
        .map((seg) =>
          seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/');
      this.routes.push({ re: new RegExp(`^${re}$`), methods });
    }
    for (const m of typeof method === 'string' ? [method] : method) {
      methods.add(m.toUpperCase());
      if (m.toUpperCase() === 'GET') methods.add('HEAD');
    }
  }

  /** The methods some route answers at this path (no query string), sorted; [] if none. */
  allowed(path: string): string[] {
    const all = new Set<string>();
    for (const r of this.routes) if (r.re.test(path)) for (const m of r.methods) all.add(m);
    return [...all].sort();
  }
}

/** The answer for a request no route took: 405 with the methods of its path, else not_found. */
export function unroutedProblem(routes: RouteMethods, method: string, url: string): Problem {
  const path = url.split('?')[0] ?? url;
  const allow = routes.allowed(path);
  if (allow.length) {
    return problemOf('method_not_allowed', `this path does not take ${method.slice(0, 16)}`, {
      allow,
      hint: `use ${allow.join(', ')} on this path`,
    });
  }
  return problemOf('not_found', 'no such endpoint');
}

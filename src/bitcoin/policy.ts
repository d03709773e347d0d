/**
 * The signer-side policy firewall for PSBT intents (DESIGN §14, seed 004): pure rules over the
 * decoded transaction (psbt.ts PsbtView) that every signer checks itself before it commits and
 * again before it releases a share. A refusal names a stable rule, so the signer answers
 * `policy_refused` with `rule` (and the operator knows which limit to change).
 *
 * Rules (each off when its setting is absent):
 *   max_outputs              more outputs than `max_outputs` (change included)
 *   destination_not_allowed  a non-change output to a script outside `allowed_destinations`
 *   max_output_value         a non-change output above `max_output_value_sats`
 *   max_total_value          the sum of non-change outputs above `max_total_value_sats`
 *   max_fee                  a fee above `max_fee_sats`
 *   change_not_own           an output claims to be ours (a derivation under our fingerprint)
 *                            but is not the address of that path (`change_only_to_own`)
 *   outside_allowed_hours    the UTC hour outside [start, end) of `allowed_hours_utc`
 *   rate_limit               more than `max_signatures_per_minute` in the last 60 s
 *   network_mismatch         the PSBT was read for another network than the policy's
 */
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FloeError } from '../protocol/errors.js';
import { decodeAddress, scriptHex } from './address.js';
import { bitcoinError } from './errors.js';
import { NETWORK_NAMES, NETWORKS, type NetworkName } from './network.js';
import { MAX_MONEY, type PsbtView } from './psbt.js';

export const POLICY_RULES = [
  'network_mismatch',
  'max_outputs',
  'destination_not_allowed',
  'max_output_value',
  'max_total_value',
  'max_fee',
  'change_not_own',
  'outside_allowed_hours',
  'rate_limit',
] as const;
export type PolicyRule = (typeof POLICY_RULES)[number];

const Sats = (description: string) => Type.Integer({ minimum: 0, maximum: MAX_MONEY, description });

/** The policy as an operator writes it (JSON); validated at load. */
export const BitcoinPolicySchema = Type.Object(
  {
    network: Type.Union(
      NETWORK_NAMES.map((n) => Type.Literal(n)),
      { description: 'the network every address below belongs to' },
    ),
    allowed_destinations: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
        maxItems: 10_000,
        description:
          'allowlist: addresses, or output scripts as "script:<hex>"; non-change outputs must pay to one',
      }),
    ),
    max_output_value_sats: Type.Optional(Sats('largest non-change output')),
    max_total_value_sats: Type.Optional(Sats('largest sum of non-change outputs')),
    max_fee_sats: Type.Optional(Sats('largest fee')),
    max_outputs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    change_only_to_own: Type.Optional(
      Type.Boolean({ description: 'refuse outputs that claim to be ours but are not (default true)' }),
    ),
    allowed_hours_utc: Type.Optional(
      Type.Object(
        { start: Type.Integer({ minimum: 0, maximum: 23 }), end: Type.Integer({ minimum: 0, maximum: 24 }) },
        {
          additionalProperties: false,
          description: 'signing allowed when start <= UTC hour < end (wraps past midnight when start > end)',
        },
      ),
    ),
    max_signatures_per_minute: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { additionalProperties: false },
);
export type BitcoinPolicyConfig = Static<typeof BitcoinPolicySchema>;

const checkConfig = TypeCompiler.Compile(BitcoinPolicySchema);

/** A validated policy, destinations resolved to scripts. */
export interface BitcoinPolicy {
  readonly config: Readonly<BitcoinPolicyConfig>;
  readonly network: NetworkName;
  /** Hex scripts of the allowlist; undefined when there is none. */
  readonly allowedScripts?: ReadonlySet<string>;
  readonly changeOnlyToOwn: boolean;
}

/**
 * Validate a policy config (TypeBox schema, then every destination parsed for the policy's network)
 * and compile it; `invalid_request` with `reason: policy_config_invalid` naming the field.
 */
export function loadPolicy(config: unknown): BitcoinPolicy {
  if (!checkConfig.Check(config)) {
    const first = checkConfig.Errors(config).First();
    throw bitcoinError(
      'policy_config_invalid',
      `bitcoin policy${first?.path || ''}: ${first?.message ?? 'invalid'}`,
    );
  }
  const c = config;
  const network = NETWORKS[c.network];
  let allowedScripts: Set<string> | undefined;
  if (c.allowed_destinations) {
    allowedScripts = new Set();
    c.allowed_destinations.forEach((d, i) => {
      const what = `bitcoin policy/allowed_destinations/${i}`;
      if (d.startsWith('script:')) {
        const hex = d.slice('script:'.length);
        if (!/^(?:[0-9a-f]{2}){1,10000}$/.test(hex)) {
          throw bitcoinError('policy_config_invalid', `${what}: expected script:<lower-case hex>`);
        }
        allowedScripts!.add(hex);
        return;
      }
      try {
        allowedScripts!.add(scriptHex(decodeAddress(d, network, { what }).script));
      } catch (e) {
        const detail = e instanceof FloeError ? e.message : `${what}: not an address`;
        throw bitcoinError('policy_config_invalid', detail);
      }
    });
  }
  if (c.allowed_hours_utc && c.allowed_hours_utc.start === c.allowed_hours_utc.end) {
    throw bitcoinError(
      'policy_config_invalid',
      'bitcoin policy/allowed_hours_utc: start equals end (no hour allowed); omit it to allow all hours',
    );
  }
  return {
    config: structuredClone(c),
    network: c.network,
    ...(allowedScripts ? { allowedScripts } : {}),
    changeOnlyToOwn: c.change_only_to_own ?? true,
  };
}

/** Signing history the rate rule needs: when this key signed (ms since the epoch), newest last. */
export interface PolicyState {
  signatures: readonly number[];
}

export const RATE_WINDOW_MS = 60_000;

export type PolicyDecision = { ok: true } | { ok: false; rule: PolicyRule; detail: string };

const refuse = (rule: PolicyRule, detail: string): PolicyDecision => ({ ok: false, rule, detail });

function hourAllowed(hour: number, start: number, end: number): boolean {
  return start < end ? hour >= start && hour < end : hour >= start || hour < end;
}

/** How many signatures this PSBT asks for (its unsigned inputs of ours). */
export function signaturesAsked(view: PsbtView): number {
  return view.inputs.filter((i) => i.ours && !i.signed).length;
}

/**
 * Check a decoded PSBT against the policy at `now`, with the signing history in `state`. Pure: the
 * first rule that refuses is returned, in the order of POLICY_RULES.
 */
export function checkPolicy(
  policy: BitcoinPolicy,
  view: PsbtView,
  now: Date | number,
  state: PolicyState = { signatures: [] },
): PolicyDecision {
  const c = policy.config;
  const t = typeof now === 'number' ? now : now.getTime();
  if (view.network !== policy.network) {
    return refuse(
      'network_mismatch',
      `the PSBT was read for ${view.network}; this policy is for ${policy.network}`,
    );
  }
  if (c.max_outputs !== undefined && view.outputs.length > c.max_outputs) {
    return refuse('max_outputs', `${view.outputs.length} outputs; at most ${c.max_outputs} allowed`);
  }
  const external = view.outputs.filter((o) => !o.change);
  if (policy.allowedScripts) {
    const bad = external.find((o) => !policy.allowedScripts!.has(o.script));
    if (bad) {
      return refuse(
        'destination_not_allowed',
        `output ${bad.index} pays ${bad.address ?? `script ${bad.script}`}, which is not on the allowlist`,
      );
    }
  }
  if (c.max_output_value_sats !== undefined) {
    const big = external.find((o) => o.value > c.max_output_value_sats!);
    if (big) {
      return refuse(
        'max_output_value',
        `output ${big.index} sends ${big.value} sats; at most ${c.max_output_value_sats} per output`,
      );
    }
  }
  if (c.max_total_value_sats !== undefined && view.sent > c.max_total_value_sats) {
    return refuse(
      'max_total_value',
      `the transaction sends ${view.sent} sats (change excluded); at most ${c.max_total_value_sats}`,
    );
  }
  if (c.max_fee_sats !== undefined && view.fee > c.max_fee_sats) {
    return refuse('max_fee', `fee of ${view.fee} sats; at most ${c.max_fee_sats}`);
  }
  if (policy.changeOnlyToOwn) {
    const fake = view.outputs.find((o) => o.claimsChange && !o.change);
    if (fake) {
      return refuse(
        'change_not_own',
        `output ${fake.index} claims to be change of this key but is not the address of its path`,
      );
    }
  }
  if (c.allowed_hours_utc) {
    const hour = new Date(t).getUTCHours();
    const { start, end } = c.allowed_hours_utc;
    if (!hourAllowed(hour, start, end)) {
      return refuse(
        'outside_allowed_hours',
        `signing is allowed from ${start}:00 to ${end}:00 UTC; it is ${hour}:xx`,
      );
    }
  }
  if (c.max_signatures_per_minute !== undefined) {
    const recent = state.signatures.filter((s) => s > t - RATE_WINDOW_MS && s <= t).length;
    const asked = signaturesAsked(view);
    if (recent + asked > c.max_signatures_per_minute) {
      return refuse(
        'rate_limit',
        `${recent} signatures in the last minute and ${asked} asked; at most ${c.max_signatures_per_minute} per minute`,
      );
    }
  }
  return { ok: true };
}

/** The state after `count` signatures at `now`, pruned to the rate window. */
export function recordSignatures(state: PolicyState, now: Date | number, count = 1): PolicyState {
  const t = typeof now === 'number' ? now : now.getTime();
  const kept = state.signatures.filter((s) => s > t - RATE_WINDOW_MS);
  return { signatures: [...kept, ...Array.from({ length: count }, () => t)] };
}

/** The FloeError a signer answers with for a refusal: `policy_refused` naming the rule. */
export function policyRefusal(decision: Extract<PolicyDecision, { ok: false }>): FloeError {
  return new FloeError('policy_refused', `bitcoin policy: ${decision.detail}`, { rule: decision.rule });
}

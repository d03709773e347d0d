/**
 * Parsers of CLI option values, shared by every command. A bad value throws commander's
 * InvalidArgumentError, so commander prints its usage error (the option, the value, why) and
 * exits 1, never a stack trace.
 */
import { InvalidArgumentError } from 'commander';

/**
 * A whole number within [min, max], for `.option(flags, description, integer({ min: 1 }))`.
 * Decimal digits only: `1e3`, `0x10`, `2.0` and `two` are refused, as are values past
 * Number.MAX_SAFE_INTEGER.
 */
export function integer(o: { min?: number; max?: number } = {}): (value: string) => number {
  const min = o.min ?? 0;
  const max = o.max ?? Number.MAX_SAFE_INTEGER;
  const range = o.max === undefined ? `${min} or more` : `from ${min} to ${max}`;
  return (value: string) => {
    const v = value.trim();
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`Expected a whole number (${range}).`);
    }
    if (n < min || n > max) throw new InvalidArgumentError(`Expected a number ${range}.`);
    return n;
  };
}

/** A TCP port (1-65535). */
export const port = integer({ min: 1, max: 65_535 });

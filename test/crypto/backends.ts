/**
 * Runs a suite once per crypto backend (DESIGN §10: every backend passes the same suites).
 * A backend that does not load fails its suite rather than being skipped.
 */
import { after, before, describe } from 'node:test';
import { BACKEND_NAMES, type BackendName, useBackend } from '../../src/crypto/index.js';

export const ALL_BACKENDS: readonly BackendName[] = BACKEND_NAMES;

export function describeEachBackend(title: string, body: (name: BackendName) => void): void {
  for (const name of ALL_BACKENDS) {
    describe(`${title} [${name}]`, () => {
      let prev: BackendName | undefined;
      before(() => {
        prev = useBackend(name);
      });
      after(() => {
        if (prev) useBackend(prev);
      });
      body(name);
    });
  }
}

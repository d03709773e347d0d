/** Steward approvals (DESIGN §13): policies, proofs and requests. Pure; transports inject. */
export * from './policy.js';
export * from './proof.js';
export * from './request.js';

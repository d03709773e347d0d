/** Node information, for the coordinator's signer registry and health checks. */
import { type Static, Type } from '@sinclair/typebox';
import { Hex, Strict } from '../schema.js';

export const NodeInfoRequest = Strict({});
export const NodeInfoResponse = Strict({
  identity: Hex(32),
  version: Type.String({ maxLength: 64 }),
  keys: Type.Integer({ minimum: 0 }),
  live_attempts: Type.Integer({ minimum: 0 }),
});
export type NodeInfoRequest = Static<typeof NodeInfoRequest>;
export type NodeInfoResponse = Static<typeof NodeInfoResponse>;

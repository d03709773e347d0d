/**
 * Every message between coordinator and signer: its type (signed into the envelope), the
 * signer's HTTP path, and the request and response schemas. The response envelope's type
 * is the request type with `.response` appended.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import * as approvals from './approvals.js';
import * as dkg from './dkg.js';
import * as ecdh from './ecdh.js';
import * as imp from './import.js';
import * as node from './node.js';
import * as operator from './operator.js';
import * as refresh from './refresh.js';
import * as repair from './repair.js';
import * as sign from './sign.js';

export interface MessageSpec<Req extends TSchema = TSchema, Res extends TSchema = TSchema> {
  type: string;
  path: string;
  request: Req;
  response: Res;
}

const spec = <Req extends TSchema, Res extends TSchema>(
  type: string,
  path: string,
  request: Req,
  response: Res,
): MessageSpec<Req, Res> => ({ type, path, request, response });

export const SIGNER_MESSAGES = {
  nodeInfo: spec('node.info', '/v1/info', node.NodeInfoRequest, node.NodeInfoResponse),
  dkgRound1: spec('dkg.round1', '/v1/dkg/round1', dkg.DkgRound1Request, dkg.DkgRound1Response),
  dkgRound2: spec('dkg.round2', '/v1/dkg/round2', dkg.DkgRound2Request, dkg.DkgRound2Response),
  dkgRound3: spec('dkg.round3', '/v1/dkg/round3', dkg.DkgRound3Request, dkg.DkgRound3Response),
  dkgCertify: spec('dkg.certify', '/v1/dkg/certify', dkg.DkgCertifyRequest, dkg.DkgCertifyResponse),
  dkgAbort: spec('dkg.abort', '/v1/dkg/abort', dkg.DkgAbortRequest, dkg.DkgAbortResponse),
  keyImport: spec('key.import', '/v1/keys/import', imp.KeyImportRequest, imp.KeyImportResponse),
  keyImportConfirm: spec(
    'key.import.confirm',
    '/v1/keys/import/confirm',
    imp.KeyImportConfirmRequest,
    imp.KeyImportConfirmResponse,
  ),
  keyImportAbort: spec(
    'key.import.abort',
    '/v1/keys/import/abort',
    imp.KeyImportAbortRequest,
    imp.KeyImportAbortResponse,
  ),
  signOpen: spec('sign.open', '/v1/sign/open', sign.SignOpenRequest, sign.SignOpenResponse),
  signRound2: spec('sign.round2', '/v1/sign/round2', sign.SignRound2Request, sign.SignRound2Response),
  signOpenBatch: spec(
    'sign.open_batch',
    '/v1/sign/open-batch',
    sign.SignOpenBatchRequest,
    sign.SignOpenBatchResponse,
  ),
  signRound2Batch: spec(
    'sign.round2_batch',
    '/v1/sign/round2-batch',
    sign.SignRound2BatchRequest,
    sign.SignRound2BatchResponse,
  ),
  signAbort: spec('sign.abort', '/v1/sign/abort', sign.SignAbortRequest, sign.SignAbortResponse),
  keyApprovalPolicy: spec(
    'key.approval_policy',
    '/v1/keys/approval-policy',
    approvals.KeyApprovalPolicyRequest,
    approvals.KeyApprovalPolicyResponse,
  ),
  ecdhShare: spec('ecdh.share', '/v1/ecdh/share', ecdh.EcdhShareRequest, ecdh.EcdhShareResponse),
  repairHelp: spec('repair.help', '/v1/repair/help', repair.RepairHelpRequest, repair.RepairHelpResponse),
  repairCombine: spec(
    'repair.combine',
    '/v1/repair/combine',
    repair.RepairCombineRequest,
    repair.RepairCombineResponse,
  ),
  repairEnroll: spec(
    'repair.enroll',
    '/v1/repair/enroll',
    repair.RepairEnrollRequest,
    repair.RepairEnrollResponse,
  ),
  repairCommit: spec(
    'repair.commit',
    '/v1/repair/commit',
    repair.RepairCommitRequest,
    repair.RepairCommitResponse,
  ),
  repairAbort: spec(
    'repair.abort',
    '/v1/repair/abort',
    repair.RepairAbortRequest,
    repair.RepairAbortResponse,
  ),
  keyFreeze: spec('key.freeze', '/v1/key/freeze', operator.KeyFreezeRequest, operator.KeyFreezeResponse),
  refreshRound1: spec(
    'refresh.round1',
    '/v1/refresh/round1',
    refresh.RefreshRound1Request,
    refresh.RefreshRound1Response,
  ),
  refreshRound2: spec(
    'refresh.round2',
    '/v1/refresh/round2',
    refresh.RefreshRound2Request,
    refresh.RefreshRound2Response,
  ),
  refreshRound3: spec(
    'refresh.round3',
    '/v1/refresh/round3',
    refresh.RefreshRound3Request,
    refresh.RefreshRound3Response,
  ),
  refreshCommit: spec(
    'refresh.commit',
    '/v1/refresh/commit',
    refresh.RefreshCommitRequest,
    refresh.RefreshCommitResponse,
  ),
  refreshAbort: spec(
    'refresh.abort',
    '/v1/refresh/abort',
    refresh.RefreshAbortRequest,
    refresh.RefreshAbortResponse,
  ),
} as const;

export type SignerMessages = typeof SIGNER_MESSAGES;
export type SignerMessageName = keyof SignerMessages;
export type RequestOf<K extends SignerMessageName> = Static<SignerMessages[K]['request']>;
export type ResponseOf<K extends SignerMessageName> = Static<SignerMessages[K]['response']>;

export const responseType = (type: string) => `${type}.response`;

export * from './approvals.js';
export * from './dkg.js';
export * from './ecdh.js';
export * from './frost.js';
export * from './import.js';
export * from './intent.js';
export * from './node.js';
export * from './operator.js';
export * from './sign.js';

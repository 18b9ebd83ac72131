import type { Express } from 'express';
import request from 'supertest';
import { env } from './harness';
import { Chain, chainFor } from './pki';

import { NO_CALLBACK } from './constants';

export { NO_CALLBACK };

/** A name no other test uses. */
export const uniq = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 9)}`;

export async function createGroup(app: Express, admin: string, name: string, info = NO_CALLBACK): Promise<string> {
  const res = await request(app).post(`/rks/v1/group/${name}`).set('X-Vault-Token', admin).send(info);
  if (res.status !== 201) throw new Error(`create group ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.groupToken;
}

export async function pushSecret(app: Express, admin: string, fqdn: string): Promise<Chain> {
  const c = await chainFor([fqdn]);
  const res = await request(app)
    .post(`/rks/v1/secret/${fqdn}`)
    .set('X-Vault-Token', admin)
    .send({ data: { certificate: c.certificate, private_key: c.privateKey } });
  if (res.status !== 201) throw new Error(`push ${fqdn}: ${res.status} ${JSON.stringify(res.body)}`);
  return c;
}

export async function associate(app: Express, admin: string, group: string, fqdn: string): Promise<void> {
  const res = await request(app).post(`/rks/v1/group/${group}/secrets/${fqdn}`).set('X-Vault-Token', admin);
  if (res.status !== 201) throw new Error(`associate ${fqdn} with ${group}: ${res.status} ${JSON.stringify(res.body)}`);
}

export async function registerNode(app: Express, groupToken: string, nodeId: string): Promise<{ nodeToken: string; ttl: number }> {
  const res = await request(app).post('/rks/v1/node').set('X-Vault-Token', groupToken).set('X-LCDN-nodeId', nodeId);
  if (res.status !== 201) throw new Error(`register ${nodeId}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Calls Vault directly with `token`, the way an attacker holding it would. */
export async function vaultAs(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; errors: string[]; body: any }> {
  const res = await fetch(`${env.vaultAddr}/v1/${path}`, {
    method,
    headers: { 'X-Vault-Token': token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  return { status: res.status, errors: parsed?.errors ?? [], body: parsed };
}

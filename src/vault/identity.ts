import { createHash, scrypt, scryptSync } from 'node:crypto';
import { ServiceUnavailable } from '../errors';
import { VaultClient } from './client';
import { SERVICE_ROLE_ID } from './layout';

/** The AppRole credentials of rks's service identity. */
export interface ServiceCredentials {
  roleId: string;
  secretId: string;
}

const derived = new Map<string, Promise<ServiceCredentials>>();
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/**
 * rks's service credentials: a fixed role id and a secret id derived from the administrator's
 * login and password and the Vault cluster's id, so every rks instance configured with them can
 * log in as rks and nothing new has to be handed out. Vault keeps secret ids only as keyed
 * HMACs, so nothing it shows lets anyone test a password guess offline; an online guess at the
 * AppRole costs a memory-hard scrypt run, salted per Vault cluster (no table serves two
 * deployments), and the administrator password rks accepts is too strong to guess that way
 * (admin/strength.ts). `clusterId` null gives the derivation of rks before the cluster salt.
 * Computed off the event loop, once per process (`now`: on it, before rks serves anything).
 */
export function serviceCredentials(login: string, password: string, clusterId: string | null, now = false): Promise<ServiceCredentials> {
  const salt = clusterId === null ? `rks service identity\0${login.toLowerCase()}` : `rks service identity\0${clusterId}\0${login.toLowerCase()}`;
  const key = createHash('sha256').update(`${salt}\0${password}`).digest('hex');
  let creds = derived.get(key);
  if (!creds) {
    const made = (out: Buffer): ServiceCredentials => ({ roleId: SERVICE_ROLE_ID, secretId: out.toString('base64url') });
    creds = now
      ? Promise.resolve(made(scryptSync(password, salt, 32, SCRYPT)))
      : new Promise((resolve, reject) => {
          scrypt(password, salt, 32, SCRYPT, (err, out) => (err ? reject(err) : resolve(made(out))));
        });
    derived.set(key, creds);
  }
  return creds;
}

/** The Vault cluster's id, which salts the derivation: Vault tells it without a token while unsealed. */
export async function clusterIdOf(vault: VaultClient): Promise<string> {
  const { clusterId } = await vault.health(2000);
  if (!clusterId) throw new ServiceUnavailable('Vault does not tell its cluster id: unreachable, sealed or not initialised');
  return clusterId;
}

/** Derives the service credentials ahead of need (see serviceCredentials): a no-op when Vault does not answer. */
export async function primeServiceCredentials(config: { vaultAddrs: string[]; vaultCaFile?: string; admin: { login: string; password: string } }): Promise<void> {
  const vault = new VaultClient({ addr: config.vaultAddrs, caFile: config.vaultCaFile, timeoutMs: 2000, maxInFlight: 2 });
  try {
    await serviceCredentials(config.admin.login, config.admin.password, await clusterIdOf(vault), true);
  } finally {
    vault.close();
  }
}

import { createHash, scrypt } from 'node:crypto';
import { SERVICE_ROLE_ID } from './layout';

/** The AppRole credentials of rks's service identity. */
export interface ServiceCredentials {
  roleId: string;
  secretId: string;
}

const derived = new Map<string, Promise<ServiceCredentials>>();

/**
 * rks's service credentials: a fixed role id and a secret id derived from the administrator's
 * login and password, so every rks instance configured with them can log in as rks and nothing
 * new has to be handed out. Vault keeps secret ids only as keyed HMACs, so nothing it shows
 * (entity aliases, locked users) lets anyone test a password guess offline; an online guess
 * costs a memory-hard scrypt run on top of Vault's answer. Computed off the event loop, once
 * per process.
 */
export function serviceCredentials(login: string, password: string): Promise<ServiceCredentials> {
  const key = createHash('sha256').update(`${login.toLowerCase()}\0${password}`).digest('hex');
  let creds = derived.get(key);
  if (!creds) {
    creds = new Promise((resolve, reject) => {
      const salt = `rks service identity\0${login.toLowerCase()}`;
      scrypt(password, salt, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (err, out) => {
        if (err) return reject(err);
        resolve({ roleId: SERVICE_ROLE_ID, secretId: out.toString('base64url') });
      });
    });
    derived.set(key, creds);
  }
  return creds;
}

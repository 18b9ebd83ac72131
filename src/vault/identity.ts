import { createHash, scrypt } from 'node:crypto';

/** The AppRole credentials of rks's service identity. */
export interface ServiceCredentials {
  roleId: string;
  secretId: string;
}

const derived = new Map<string, Promise<ServiceCredentials>>();

/**
 * rks's service credentials, derived from the administrator's login and password: every rks
 * instance that is configured with them can log in as rks, nothing new has to be handed out,
 * and a guess costs an attacker a memory-hard scrypt run on top of Vault's answer. Computed
 * off the event loop, once per process.
 */
export function serviceCredentials(login: string, password: string): Promise<ServiceCredentials> {
  const key = createHash('sha256').update(`${login.toLowerCase()}\0${password}`).digest('hex');
  let creds = derived.get(key);
  if (!creds) {
    creds = new Promise((resolve, reject) => {
      const salt = `rks service identity\0${login.toLowerCase()}`;
      scrypt(password, salt, 48, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (err, out) => {
        if (err) return reject(err);
        resolve({ roleId: `rks-${out.subarray(0, 16).toString('hex')}`, secretId: out.subarray(16).toString('base64url') });
      });
    });
    derived.set(key, creds);
  }
  return creds;
}

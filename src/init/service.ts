import { Conflict, Forbidden } from '../errors';
import { isVaultError } from '../vault/client';
import { CasMismatch, Kv } from '../vault/kv';
import {
  ADMIN_POLICY,
  KV_MOUNT,
  PKI_CLIENT_ROLE,
  PKI_MOUNT,
  PKI_SERVER_ROLE,
  USERPASS_PATH,
  adminPolicy,
  kvPath,
} from '../vault/layout';
import { Pki } from '../vault/pki';
import { Sys } from '../vault/sys';

export interface AdminCredentials {
  login: string;
  password: string;
}

/** A CA to import instead of generating one in Vault. */
export interface CaBundle {
  certPem: string;
  keyPem: string;
}

/** Versions KV keeps of each secret. */
export const KEPT_VERSIONS = 2;

export interface RksConfigRecord {
  initialized: true;
  initializedAt: string;
  layout: number;
}

/**
 * Prepares Vault for rks. Every step is idempotent and `rks/data/config` is written last
 * (check-and-set 0), so an init that stopped half-way can simply be run again, and two
 * concurrent inits cannot both succeed.
 */
export class InitService {
  constructor(
    private readonly sys: Sys,
    private readonly kv: Kv,
    private readonly pki: Pki,
    private readonly admin: AdminCredentials,
    private readonly ca?: CaBundle,
  ) {}

  async init(token: string): Promise<void> {
    try {
      await this.sys.lookupSelf(token);
    } catch (err) {
      if (isVaultError(err, 403)) throw new Forbidden('permission denied: init needs the Vault root token');
      throw err;
    }
    if (await this.isInitialised(token)) throw new Conflict('rks is already initialised');

    const mounts = await this.sys.mounts(token);
    const kv = mounts[`${KV_MOUNT}/`];
    if (!kv) {
      await this.sys.mount(KV_MOUNT, 'kv', { version: '2' }, token);
    } else if (kv.type !== 'kv' || kv.options?.version !== '2') {
      throw new Conflict(`'${KV_MOUNT}/' is already mounted and is not a KV version 2 engine`);
    }

    // The current version and the one before (to roll back a bad push); older keys go.
    await this.configureKv(token);

    const auths = await this.sys.authMethods(token);
    const userpass = auths[`${USERPASS_PATH}/`];
    if (!userpass) await this.sys.enableAuth(USERPASS_PATH, 'userpass', token);
    else if (userpass.type !== 'userpass') {
      throw new Conflict(`'auth/${USERPASS_PATH}/' is already enabled and is not userpass`);
    }

    await this.sys.putPolicy(ADMIN_POLICY, adminPolicy, token);
    await this.sys.writeUserpassUser(
      USERPASS_PATH,
      this.admin.login,
      { password: this.admin.password, token_policies: [ADMIN_POLICY], token_ttl: '1h', token_max_ttl: '24h' },
      token,
    );

    await this.initPki(token, mounts);

    const record: RksConfigRecord = { initialized: true, initializedAt: new Date().toISOString(), layout: 1 };
    await this.writeConfig(record, token);
  }

  /** The PKI engine, its CA (made inside Vault unless one was given) and the leaf roles. */
  private async initPki(token: string, mounts: Record<string, { type: string }>): Promise<void> {
    const mount = mounts[`${PKI_MOUNT}/`];
    if (!mount) {
      await this.sys.mount(PKI_MOUNT, 'pki', {}, token);
    } else if (mount.type !== 'pki') {
      throw new Conflict(`'${PKI_MOUNT}/' is already mounted and is not a PKI engine`);
    }
    await this.pki.tune('87600h', token);
    if (!(await this.pki.caPem())) {
      if (this.ca) await this.pki.importCa(`${this.ca.certPem.trim()}\n${this.ca.keyPem.trim()}\n`, token);
      else await this.pki.generateRoot('rks CA', '87600h', token);
    }
    const leaf = { key_usage: ['DigitalSignature', 'KeyEncipherment'], max_ttl: '8760h' };
    await this.pki.writeRole(PKI_SERVER_ROLE, { ...leaf, server_flag: true, client_flag: true }, token);
    await this.pki.writeRole(PKI_CLIENT_ROLE, { ...leaf, server_flag: false, client_flag: true }, token);
  }

  async isInitialised(token: string): Promise<boolean> {
    try {
      return Boolean((await this.kv.read<RksConfigRecord>(kvPath.config, token))?.data.initialized);
    } catch (err) {
      // No mount yet: Vault answers 404 to root ("no handler for route") and 400 while a new
      // KV v2 mount is still upgrading.
      if (isVaultError(err, 404) || isVaultError(err, 400)) return false;
      throw err;
    }
  }

  private async configureKv(token: string): Promise<void> {
    await whileUpgrading(() => this.kv.configure(KEPT_VERSIONS, token));
  }

  private async writeConfig(record: RksConfigRecord, token: string): Promise<void> {
    try {
      await whileUpgrading(() => this.kv.write(kvPath.config, record, token, 0));
    } catch (err) {
      if (err instanceof CasMismatch) throw new Conflict('rks is already initialised');
      throw err;
    }
  }
}

/** A freshly mounted KV v2 engine refuses changes for a moment while it upgrades: retry those. */
async function whileUpgrading<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const upgrading = isVaultError(err, 400, 'pgrading') || isVaultError(err, 503);
      if (attempt >= 50 || !upgrading) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

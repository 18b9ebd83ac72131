import { Conflict, Forbidden, LayoutNewer } from '../errors';
import { isSecretName } from '../names';
import { GroupService } from '../groups/service';
import { Predating, classicSigns, findPredating, nothingPredates, predatingLines } from './predating';
import { Storage } from '../secrets/storage';
import { isDenied, isNoMount, isUpgrading } from '../vault/client';
import { ServiceCredentials, serviceCredentials } from '../vault/identity';
import { ADMIN_POLICY, KV_MOUNT, LAYOUT, PKI_CLIENT_ROLE, PKI_MOUNT, PKI_SERVER_ROLE, SERVICE_AUTH_PATH, SERVICE_POLICY, LEGACY_MANAGED_POLICY, SERVICE_ROLE, SERVICE_TOKEN_PERIOD, USERPASS_LOCKOUT, USERPASS_PATH, PREFIX, groupTokenName, groupsIn, kvPath, nodePolicyName } from '../vault/layout';
import { adminPolicy, groupTokenPolicy, nodePolicy, servicePolicy } from '../vault/policies';
import { RenewalSchedule } from '../managed/schedule';
import { renewAt } from '../managed/service';
import { isManagedStub, ManagedSpec, ManagedSpecRecord, ManagedStub, RenewalState } from '../records/secrets';
import type { AppRoleStore, KvEntry, KvStore, PkiStore, SetupStore, TokenStore, VaultStores } from '../vault/stores';

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
  upgradedAt?: string;
}

/**
 * The config record Orange's remote-key-server writes: its Go configuration struct, field names
 * capitalised (VaultInitialized, AdminLogin, …), where rks writes `initialized` and `layout`.
 */
export function isClassicRecord(record: object): boolean {
  return !('initialized' in record) && ('VaultInitialized' in record || 'AdminLogin' in record);
}

/** What an init did: a new initialisation, or the changes that brought an older one up to date. */
export type InitOutcome = { initialised: true } | { upgraded: string[] };

/**
 * Prepares Vault for rks. Every step is idempotent and `rks/data/config` is written last
 * (check-and-set 0), so an init that stopped half-way can simply be run again, and two
 * concurrent inits cannot both succeed.
 */
export class InitService {
  private readonly setup: SetupStore;
  private readonly kv: KvStore;
  private readonly pki: PkiStore;
  private readonly appRole: AppRoleStore;
  private readonly tokens: TokenStore;

  constructor(
    stores: VaultStores,
    private readonly admin: AdminCredentials,
    private readonly ca?: CaBundle,
    /** The secrets' records, which an upgrade moves (the server's own, when it runs init). */
    private readonly storage = new Storage(stores.kv),
  ) {
    ({ setup: this.setup, kv: this.kv, pki: this.pki, appRole: this.appRole, tokens: this.tokens } = stores);
  }

  /**
   * Whether rks ran init here with these admin credentials: its service identity answers to the
   * secret id derived from them, which nobody without the password can have made.
   */
  private async credentials(): Promise<ServiceCredentials> {
    return serviceCredentials(this.admin.login, this.admin.password, await this.setup.clusterId());
  }

  /**
   * What rks would own here but did not make: on a Vault where it never ran, someone else's
   * (what a half-way init of its own left, it recognises by its text and keeps). Reads only.
   */
  async predating(token: string): Promise<Predating> {
    return findPredating(this.setup, this.kv, this.tokens, token, {
      ours: { [ADMIN_POLICY]: adminPolicy, [SERVICE_POLICY]: servicePolicy },
      adminLogin: this.admin.login.toLowerCase(),
    });
  }

  async ranHere(token: string): Promise<boolean> {
    const auths = await this.setup.authMethods(token);
    if (auths[`${SERVICE_AUTH_PATH}/`]?.type !== 'approle') return false;
    const creds = await this.credentials();
    return this.appRole.hasSecretId(SERVICE_ROLE, creds.secretId, token);
  }

  /**
   * Initialises Vault for rks, or brings an initialised one up to this rks's layout (its
   * service identity and the admin login's lockout settings). Decides from reads alone, so a
   * refused init (403, or 409 when there is nothing to do) writes nothing.
   */
  async init(token: string): Promise<InitOutcome> {
    try {
      await this.tokens.lookupSelf(token);
    } catch (err) {
      if (isDenied(err)) throw new Forbidden('permission denied: init needs the Vault root token');
      throw err;
    }
    const creds = await this.credentials();
    const existing = await this.configRecord(token);
    const ran = await this.refuseOthers(token, existing);
    return existing ? this.upgrade(token, existing, creds) : this.initialise(token, creds, ran);
  }

  /**
   * Refuses a Vault that is not rks's to initialise or upgrade: a classic deployment's, or one a
   * newer rks laid out. Answers whether rks ran here.
   */
  private async refuseOthers(token: string, existing: KvEntry<RksConfigRecord> | null): Promise<boolean> {
    if (existing && isClassicRecord(existing.data)) {
      throw new Conflict(
        "this Vault holds a classic remote-key-server deployment (its rks/data/config): init changes nothing here; take it over with 'rks migrate' (README: Coming from remote-key-server)",
        'classic_deployment',
      );
    }
    const ran = await this.ranHere(token);
    // Where rks never ran, the classic's own objects say it is there, whatever the record says.
    const signs = ran ? [] : await classicSigns(this.setup, this.tokens, token);
    if (signs.length) {
      throw new Conflict(
        `this Vault holds a classic remote-key-server deployment (${signs.slice(0, 5).join(', ')}${signs.length > 5 ? ', …' : ''}): init changes nothing here; take it over with 'rks migrate' (README: Coming from remote-key-server)`,
        'classic_deployment',
      );
    }
    if (existing && (existing.data.layout ?? 1) > LAYOUT) {
      // An older rks's init would write its older policies and layout over the newer ones.
      throw new LayoutNewer(`Vault holds rks layout ${existing.data.layout}, newer than this rks's (${LAYOUT}): run init with the newer rks`);
    }
    return ran;
  }

  /** Brings an initialised Vault up to this rks's layout, or says it is already there (409). */
  private async upgrade(token: string, existing: KvEntry<RksConfigRecord>, creds: ServiceCredentials): Promise<InitOutcome> {
    const stale = await this.staleParts(token, existing.data, creds);
    if (stale.length === 0) throw new Conflict('rks is already initialised', 'already_initialised');
    if (stale.includes('service identity')) await this.checkAdminPassword();
    await this.ensureServiceIdentity(token, creds);
    await this.ensureUserpass(token);
    await this.setup.putPolicy(ADMIN_POLICY, adminPolicy, token);
    if ((existing.data.layout ?? 1) < 2) await this.backfillLayout2(token);
    if ((existing.data.layout ?? 1) < 3) await this.backfillLayout3(token);
    if ((existing.data.layout ?? 1) < 4) await this.backfillLayout4(token);
    if ((existing.data.layout ?? 1) < 5) await this.backfillLayout5(token);
    if ((existing.data.layout ?? 1) < 6) await this.backfillLayout6(token);
    const record: RksConfigRecord = { ...existing.data, layout: LAYOUT, upgradedAt: new Date().toISOString() };
    await this.writeConfig(record, token, existing.version);
    return { upgraded: stale };
  }

  /** The first init: rks's mount, login, policies, identity and CA, then its config record. */
  private async initialise(token: string, creds: ServiceCredentials, ran: boolean): Promise<InitOutcome> {
    // Nothing that predates rks is trusted or adopted: a CA someone else holds the key of, an
    // auth method with their roles, an identity that hands out rks's policies.
    if (!ran) {
      const found = await this.predating(token);
      if (!nothingPredates(found)) {
        throw new Conflict(
          `this Vault holds objects named like rks's that rks did not make (init adopts none of them; remove them, or take a classic deployment over with 'rks migrate', which removes them): ${predatingLines(found).join('; ')}`,
          'predating_objects',
        );
      }
    }
    const mounts = await this.setup.mounts(token);
    const kv = mounts[`${KV_MOUNT}/`];
    if (!kv) {
      await this.setup.mount(KV_MOUNT, 'kv', { version: '2' }, token);
    } else if (kv.type !== 'kv' || kv.options?.version !== '2') {
      throw new Conflict(`'${KV_MOUNT}/' is already mounted and is not a KV version 2 engine`);
    }

    // The current version and the one before (to roll back a bad push); older keys go.
    await this.configureKv(token);

    await this.ensureUserpass(token);
    await this.setup.putPolicy(ADMIN_POLICY, adminPolicy, token);
    await this.setup.writeUserpassUser(
      USERPASS_PATH,
      this.admin.login,
      {
        password: this.admin.password,
        token_policies: [ADMIN_POLICY],
        token_ttl: '1h',
        token_max_ttl: '24h',
        token_period: 0,
        token_type: 'service',
        token_bound_cidrs: [],
        token_num_uses: 0,
        token_explicit_max_ttl: 0,
        token_no_default_policy: false,
      },
      token,
    );
    await this.ensureServiceIdentity(token, creds);

    await this.initPki(token, mounts);

    const record: RksConfigRecord = { initialized: true, initializedAt: new Date().toISOString(), layout: LAYOUT };
    await this.writeConfig(record, token, 0);
    return { initialised: true };
  }


  /** What an initialised Vault lacks compared with this rks's layout; reads only. */
  private async staleParts(token: string, record: RksConfigRecord, creds: ServiceCredentials): Promise<string[]> {
    const stale: string[] = [];
    const identity =
      (await this.setup.readPolicy(SERVICE_POLICY, token)) === servicePolicy &&
      (await this.appRole.roleId(SERVICE_ROLE, token)) === creds.roleId &&
      (await this.appRole.hasSecretId(SERVICE_ROLE, creds.secretId, token));
    if (!identity) stale.push('service identity');
    const serviceTune = identity ? await this.setup.authTune(SERVICE_AUTH_PATH, token) : {};
    if (identity && serviceTune.user_lockout_disable !== true) stale.push('service identity');
    const lockout = await this.setup.authTune(USERPASS_PATH, token);
    if (
      Number(lockout.user_lockout_threshold) !== USERPASS_LOCKOUT.threshold ||
      Number(lockout.user_lockout_duration) !== USERPASS_LOCKOUT.durationSeconds ||
      Number(lockout.user_lockout_counter_reset_duration) !== USERPASS_LOCKOUT.counterResetSeconds ||
      lockout.user_lockout_disable === true
    ) {
      stale.push('admin login lockout settings');
    }
    if ((await this.setup.readPolicy(ADMIN_POLICY, token)) !== adminPolicy) stale.push('admin policy');
    if ((record.layout ?? 1) < LAYOUT && stale.length === 0) stale.push('layout version');
    return stale;
  }

  /** The userpass mount of the human admin login, with Vault's user lockout set explicitly. */
  private async ensureUserpass(token: string): Promise<void> {
    const auths = await this.setup.authMethods(token);
    const userpass = auths[`${USERPASS_PATH}/`];
    if (!userpass) await this.setup.enableAuth(USERPASS_PATH, 'userpass', token);
    else if (userpass.type !== 'userpass') {
      throw new Conflict(`'auth/${USERPASS_PATH}/' is already enabled and is not userpass`);
    }
    await this.setup.tuneAuth(
      USERPASS_PATH,
      {
        user_lockout_config: {
          lockout_threshold: String(USERPASS_LOCKOUT.threshold),
          lockout_duration: `${USERPASS_LOCKOUT.durationSeconds}s`,
          lockout_counter_reset_duration: `${USERPASS_LOCKOUT.counterResetSeconds}s`,
          lockout_disable: false,
        },
      },
      token,
    );
  }

  /**
   * Before (re)keying rks's service identity with this rks's admin password, makes sure Vault
   * knows that password: an rks started with a wrong or stale one must not take the identity
   * away from the instances that have the right one.
   */
  private async checkAdminPassword(): Promise<void> {
    const answer = await this.setup.userpassLogin(USERPASS_PATH, this.admin.login, this.admin.password);
    if (!('token' in answer)) {
      throw new Conflict(
        `this rks's admin password is not the one Vault has for '${this.admin.login}' (or the login is locked): set the same in both, then run init again`,
      );
    }
    await this.setup.revokeSelf(answer.token);
  }

  /**
   * rks's own AppRole: its policy, its role, and the secret id derived from the admin's
   * credentials. Vault's user lockout is off on this mount: its role id is no secret, so with
   * lockout on anyone who reaches Vault could lock rks out by failing to log in as it.
   */
  private async ensureServiceIdentity(token: string, creds: ServiceCredentials): Promise<void> {
    const auths = await this.setup.authMethods(token);
    const mount = auths[`${SERVICE_AUTH_PATH}/`];
    if (!mount) await this.setup.enableAuth(SERVICE_AUTH_PATH, 'approle', token);
    else if (mount.type !== 'approle') {
      throw new Conflict(`'auth/${SERVICE_AUTH_PATH}/' is already enabled and is not approle`);
    }
    await this.setup.tuneAuth(SERVICE_AUTH_PATH, { user_lockout_config: { lockout_disable: true } }, token);
    await this.setup.putPolicy(SERVICE_POLICY, servicePolicy, token);
    await this.appRole.writeRole(
      SERVICE_ROLE,
      {
        token_policies: [SERVICE_POLICY],
        token_period: SERVICE_TOKEN_PERIOD,
        token_no_default_policy: true,
        token_type: 'service',
        bind_secret_id: true,
        secret_id_ttl: 0,
        secret_id_num_uses: 0,
        token_bound_cidrs: [],
        secret_id_bound_cidrs: [],
        token_num_uses: 0,
        token_explicit_max_ttl: 0,
        token_ttl: 0,
        token_max_ttl: 0,
      },
      token,
    );
    if ((await this.appRole.roleId(SERVICE_ROLE, token)) !== creds.roleId) {
      await this.appRole.setRoleId(SERVICE_ROLE, creds.roleId, token);
    }
    if (!(await this.appRole.hasSecretId(SERVICE_ROLE, creds.secretId, token))) {
      await this.appRole.replaceSecretIds(SERVICE_ROLE, creds.secretId, token);
    }
  }

  /**
   * What layout 2 keeps that layout 1 did not: each group token's accessor apart from the
   * token (rks's identity renews by accessor), and a record for each node role, so nodes
   * admitted before count against the group's limit and are pruned when idle.
   */
  /**
   * What layout 3 holds that layout 2 did not: token roles that make service tokens only (a
   * batch token can be neither listed nor revoked), group tokens that set nothing but metadata
   * when they make node tokens, and PKI roles that keep no copy of what they sign.
   */
  private async backfillLayout3(token: string): Promise<void> {
    for (const role of (await this.tokens.listRoles(token)).filter((r) => r.startsWith(`${PREFIX}node_`) || r.startsWith(`${PREFIX}grouptoken_`))) {
      await this.tokens.updateRole(role, { token_type: 'service' }, token);
    }
    for (const g of groupsIn(await this.kv.list(kvPath.groups, token))) {
      if ((await this.setup.readPolicy(groupTokenName(g), token)) !== null) await this.setup.putPolicy(groupTokenName(g), groupTokenPolicy(g), token);
    }
    if (await this.pki.caPem()) await this.writePkiRoles(token);
  }

  /**
   * What layout 4 holds that layout 3 did not: each group's secrets as copies in its folder,
   * granted by a node policy of constant size, instead of one list and a policy naming every
   * secret; and rks's identity allowed to keep the copies of managed secrets.
   */
  private async backfillLayout4(token: string): Promise<void> {
    const groups = new GroupService(this.storage, this.setup, this.tokens, { run: (fn) => fn(token) });
    for (const g of groupsIn(await this.kv.list(kvPath.groups, token))) {
      const [config, serial, list] = await Promise.all([this.storage.groups.exists(token, g), ...[kvPath.groupSerial(g), kvPath.groupSecrets(g)].map((p) => this.kv.exists(p, token))]);
      if (config && (!serial || list)) await groups.upgrade(token, g);
    }
  }

  /**
   * What layout 6 holds that layout 5 did not: a managed secret's certificates apart from its
   * stub, its state and its mark in the schedule one small entry each, its copies in the groups'
   * `managed/` folders, and rks's identity granted those folders (a policy of constant size)
   * instead of a policy naming every managed secret. Each secret's state keeps its date: no
   * renewal is missed. Every step can run again.
   */
  private async backfillLayout6(token: string): Promise<void> {
    // Nodes are granted the managed copies' folder before any copy moves there.
    for (const g of groupsIn(await this.kv.list(kvPath.groups, token))) {
      if ((await this.setup.readPolicy(nodePolicyName(g), token)) !== null) await this.setup.putPolicy(nodePolicyName(g), nodePolicy(g), token);
    }
    type LegacyState = Omit<RenewalState, 'pending'> & { pending?: { spec: ManagedSpec; ttl?: number } };
    const legacy = await this.kv.read<{ secrets?: Record<string, LegacyState> }>(kvPath.legacyManagedSchedule, token);
    const states = legacy?.data.secrets ?? {};
    const catalogued: string[] = [];
    const { records, material, copies, catalog } = this.storage;
    await catalog.scan(token, (n, e) => void (e.managed && catalogued.push(n)));
    const schedule = new RenewalSchedule(this.kv);
    for (const fqdn of [...new Set([...Object.keys(states), ...catalogued])].filter(isSecretName)) {
      const head = await records.read(token, fqdn);
      const state = states[fqdn];
      if (head && !isManagedStub(head.data) && head.data.managed) {
        const { managed, meta } = head.data;
        await material.write(token, fqdn, head.data);
        await records.replace(token, fqdn, { managed, ...(meta?.ttl ? { meta: { ttl: meta.ttl } } : {}) }, head.version, 'the upgrade; run init again');
      } else if (!head && state?.pending?.spec) {
        const { spec, ttl } = state.pending;
        await records.replace(token, fqdn, { managed: spec, ...(ttl ? { meta: { ttl } } : {}) }, 0, 'the upgrade; run init again');
      } else if (!head || !isManagedStub(head.data)) continue;
      const stub = (await records.read(token, fqdn))!.data as ManagedStub;
      await this.kv.write<ManagedSpecRecord>(kvPath.managedSpec(fqdn), { spec: stub.managed, ...(stub.meta?.ttl ? { ttl: stub.meta.ttl } : {}) }, token);
      const seen = await schedule.read(token, fqdn);
      if (state && Number.isSafeInteger(state.renewAt)) {
        const { inProgress: _p, claim: _c, pending, ...kept } = state;
        await schedule.put(token, fqdn, { ...kept, ...(pending ? { pending: true as const } : {}) }, seen);
      } else if (!seen) {
        // Not in the schedule (a write lost before): renewed from what is stored.
        const stored = await material.read(token, fqdn);
        await schedule.put(token, fqdn, { renewAt: stored?.data.info ? renewAt(stored.data, stub.managed) : Math.floor(Date.now() / 1000), failures: 0 }, null);
      }
      for (const g of await copies.groupsOf(token, fqdn)) await copies.sync(token, g, fqdn, false);
      await catalog.refresh(token, fqdn);
    }
    await this.kv.destroy(kvPath.legacyManagedSchedule, token);
    await this.setup.deletePolicy(LEGACY_MANAGED_POLICY, token);
  }

  /** What layout 5 holds that layout 4 did not: the catalog the inventory lists from, in place of the expiry index. */
  private async backfillLayout5(token: string): Promise<void> {
    await this.storage.catalog.reconcile(token, await this.kv.list(kvPath.secrets, token));
    for (const shard of await this.kv.list(kvPath.expiryShards, token)) await this.kv.destroy(`${kvPath.expiryShards}${shard}`, token);
  }

  private async backfillLayout2(token: string): Promise<void> {
    for (const g of groupsIn(await this.kv.list(kvPath.groups, token))) {
      const record = await this.kv.read<{ accessor?: string }>(kvPath.groupToken(g), token);
      if (record?.data.accessor) await this.kv.write(kvPath.groupTokenAccessor(g), { accessor: record.data.accessor }, token);
    }
    for (const role of await this.tokens.listRoles(token)) {
      const m = /^rks_node_([a-z0-9-]+)_([a-z0-9-]+)$/.exec(role);
      if (!m || (await this.storage.nodes.exists(token, m[1], m[2]))) continue;
      await this.storage.nodes.admit(token, m[1], m[2]);
    }
  }

  /** The PKI engine, its CA (made inside Vault unless one was given) and the leaf roles. */
  private async initPki(token: string, mounts: Record<string, { type: string }>): Promise<void> {
    const mount = mounts[`${PKI_MOUNT}/`];
    if (!mount) {
      await this.setup.mount(PKI_MOUNT, 'pki', {}, token);
    } else if (mount.type !== 'pki') {
      throw new Conflict(`'${PKI_MOUNT}/' is already mounted and is not a PKI engine`);
    }
    await this.pki.tune('87600h', token);
    if (!(await this.pki.caPem())) {
      if (this.ca) await this.pki.importCa(`${this.ca.certPem.trim()}\n${this.ca.keyPem.trim()}\n`, token);
      else await this.pki.generateRoot('rks CA', '87600h', token);
    }
    await this.writePkiRoles(token);
  }

  private async writePkiRoles(token: string): Promise<void> {
    const leaf = { key_usage: ['DigitalSignature', 'KeyEncipherment'], max_ttl: '8760h' };
    await this.pki.writeRole(PKI_SERVER_ROLE, { ...leaf, server_flag: true, client_flag: true }, token);
    await this.pki.writeRole(PKI_CLIENT_ROLE, { ...leaf, server_flag: false, client_flag: true }, token);
  }

  async isInitialised(token: string): Promise<boolean> {
    return Boolean((await this.configRecord(token))?.data.initialized);
  }

  private async configRecord(token: string) {
    try {
      return await this.kv.read<RksConfigRecord>(kvPath.config, token);
    } catch (err) {
      // No mount yet: Vault answers 404 to root ("no handler for route") and 400 while a new
      // KV v2 mount is still upgrading.
      if (isNoMount(err)) return null;
      throw err;
    }
  }

  private async configureKv(token: string): Promise<void> {
    await whileUpgrading(() => this.kv.configure(KEPT_VERSIONS, token));
  }

  /** Check-and-set: two concurrent inits (or upgrades) cannot both succeed. */
  private async writeConfig(record: RksConfigRecord, token: string, cas: number): Promise<void> {
    await whileUpgrading(() => this.kv.writeAt(kvPath.config, record, token, cas, () => new Conflict('rks is already initialised', 'already_initialised')));
  }
}

/** A freshly mounted KV v2 engine refuses changes for a moment while it upgrades: retry those. */
async function whileUpgrading<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const upgrading = isUpgrading(err);
      if (attempt >= 50 || !upgrading) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

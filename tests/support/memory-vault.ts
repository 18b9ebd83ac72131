import { randomUUID } from 'node:crypto';
import type { SecretServiceParts } from '../../src/secrets/service';
import { VaultError } from '../../src/vault/client';
import { casUpdate, casWrite } from '../../src/vault/kv';
import {
  AppRoleSpec,
  AppRoleStore,
  CasMismatch,
  CasOptions,
  Identity,
  IssuedToken,
  KvEntry,
  KvStore,
  LoginAnswer,
  NO_CHANGE,
  PkiRole,
  PkiStore,
  PolicyStore,
  RoleSpec,
  Session,
  SetupStore,
  SignedCertificate,
  TokenInfo,
  TokenStore,
} from '../../src/vault/stores';

const denied = (operation: string) => new VaultError(403, ['permission denied'], operation);
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

/** KV v2 in memory: versions and check-and-set as Vault does them. Tokens are not checked. */
export class MemoryKv implements KvStore {
  readonly entries = new Map<string, { data: unknown; version: number }>();
  /** The version before the current one, as Vault keeps it (rks keeps two). */
  readonly previous = new Map<string, { data: unknown; version: number }>();
  /** Called before each write; a test can make another writer get there first. */
  beforeWrite?: (path: string) => Promise<void> | void;

  async read<T>(path: string, _token?: string, version?: number): Promise<KvEntry<T> | null> {
    const e = version === undefined || this.entries.get(path)?.version === version ? this.entries.get(path) : this.previous.get(path)?.version === version ? this.previous.get(path) : undefined;
    return e ? { data: clone(e.data) as T, version: e.version } : null;
  }

  async configure(): Promise<void> {}

  writeAt<T>(path: string, data: T, token: string, version: number, conflict: () => Error): Promise<number> {
    return casWrite(this, path, data, token, version, conflict);
  }

  async write<T>(path: string, data: T, _token: string, cas?: number): Promise<number> {
    await this.beforeWrite?.(path);
    const version = this.entries.get(path)?.version ?? 0;
    if (cas !== undefined && cas !== version) throw new CasMismatch();
    const current = this.entries.get(path);
    if (current) this.previous.set(path, current);
    this.entries.set(path, { data: clone(data), version: version + 1 });
    return version + 1;
  }

  update<T>(path: string, token: string, fn: (current: T | null) => T | typeof NO_CHANGE, opts?: CasOptions<T>): Promise<T | null> {
    return casUpdate(this, path, token, fn, opts);
  }

  async exists(path: string): Promise<boolean> {
    return this.entries.has(path);
  }

  async version(path: string): Promise<number> {
    return this.entries.get(path)?.version ?? 0;
  }

  async destroy(path: string): Promise<void> {
    this.entries.delete(path);
    this.previous.delete(path);
  }

  /** Like a KV LIST: the names right under `prefix`, folders with a trailing '/'. */
  async list(prefix: string): Promise<string[]> {
    const names = new Set<string>();
    for (const key of this.entries.keys()) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      names.add(slash === -1 ? rest : rest.slice(0, slash + 1));
    }
    return [...names].sort();
  }
}

interface MemoryToken {
  policies: string[];
  meta: Record<string, string>;
  ttl: number;
  accessor: string;
  role?: string;
  parent?: string;
  revoked: boolean;
}

/** The token store in memory: roles, tokens made from them, parents and children, revocation. */
export class MemoryTokens implements TokenStore {
  readonly tokens = new Map<string, MemoryToken>();
  readonly roles = new Map<string, RoleSpec>();

  /** A token as an operator would make one (an admin token, say). */
  issue(policies: string[], meta: Record<string, string> = {}, ttl = 3600): string {
    const token = `hvs.${randomUUID()}`;
    this.tokens.set(token, { policies, meta, ttl, accessor: randomUUID(), revoked: false });
    return token;
  }

  live(token: string): boolean {
    return this.tokens.get(token)?.revoked === false;
  }

  async lookupSelf(token: string): Promise<TokenInfo> {
    const t = this.mustLive(token, 'token.lookup-self');
    return { policies: t.policies, meta: t.meta, ttl: t.ttl, accessor: t.accessor, path: t.role ? `auth/token/create/${t.role}` : 'auth/token/create' };
  }

  async renewSelf(token: string): Promise<IssuedToken> {
    const t = this.mustLive(token, 'token.renew-self');
    return { token, accessor: t.accessor, ttl: t.ttl, meta: t.meta };
  }

  async renewAccessor(accessor: string): Promise<void> {
    if (![...this.tokens.values()].some((t) => t.accessor === accessor && !t.revoked)) throw new VaultError(400, ['invalid accessor'], 'token.renew-accessor');
  }

  async readRole(name: string): Promise<{ allowed_policies: string[]; allowed_policies_glob: string[]; disallowed_policies: string[] } | null> {
    const r = this.roles.get(name);
    return r ? { allowed_policies: [...r.allowed_policies], allowed_policies_glob: [], disallowed_policies: [] } : null;
  }

  async accessorInfo(accessor: string): Promise<{ path: string; policies: string[] } | null> {
    const t = [...this.tokens.values()].find((x) => x.accessor === accessor && !x.revoked);
    return t ? { path: t.role ? `auth/token/create/${t.role}` : 'auth/token/create', policies: [...t.policies] } : null;
  }

  async listAccessors(): Promise<string[]> {
    return [...this.tokens.values()].filter((t) => !t.revoked).map((t) => t.accessor);
  }

  async writeRole(name: string, spec: RoleSpec, _token?: string): Promise<void> {
    this.roles.set(name, clone(spec));
  }

  async deleteRole(name: string): Promise<void> {
    this.roles.delete(name);
  }

  async updateRole(name: string, fields: Partial<RoleSpec>): Promise<void> {
    const role = this.roles.get(name);
    if (role) this.roles.set(name, { ...role, ...fields });
  }

  async listRoles(): Promise<string[]> {
    return [...this.roles.keys()].sort();
  }

  async createFromRole(role: string, token: string, meta: Record<string, string>): Promise<IssuedToken> {
    this.mustLive(token, 'token.create');
    const spec = this.roles.get(role);
    if (!spec) throw new VaultError(400, ['unknown role'], 'token.create');
    const made = `hvs.${randomUUID()}`;
    const t: MemoryToken = {
      policies: spec.allowed_policies,
      meta,
      ttl: spec.token_period,
      accessor: randomUUID(),
      role,
      parent: spec.orphan ? undefined : token,
      revoked: false,
    };
    this.tokens.set(made, t);
    return { token: made, accessor: t.accessor, ttl: t.ttl, meta };
  }

  async revokeRoleTokens(role: string): Promise<void> {
    for (const [token, t] of this.tokens) if (t.role === role) this.revoke(token);
  }

  private revoke(token: string): void {
    const t = this.tokens.get(token);
    if (!t || t.revoked) return;
    t.revoked = true;
    for (const [child, c] of this.tokens) if (c.parent === token) this.revoke(child);
  }

  private mustLive(token: string, operation: string): MemoryToken {
    const t = this.tokens.get(token);
    if (!t || t.revoked) throw denied(operation);
    return t;
  }
}

export class MemoryPolicies implements PolicyStore {
  readonly policies = new Map<string, string>();

  async putPolicy(name: string, policy: string): Promise<void> {
    this.policies.set(name, policy);
  }

  async readPolicy(name: string): Promise<string | null> {
    return this.policies.get(name) ?? null;
  }

  async deletePolicy(name: string): Promise<void> {
    this.policies.delete(name);
  }
}

/** rks's own session, with a token of its own in the given store. */
export function memorySession(tokens: MemoryTokens): Session {
  const token = tokens.issue(['rks_service']);
  return { run: (fn) => fn(token) };
}

/**
 * Init's side of Vault in memory: secrets engines, auth methods with their lockout tuning,
 * policies, userpass users. Durations are kept in seconds, as Vault answers them.
 */
export class MemorySetup extends MemoryPolicies implements SetupStore {
  readonly mounted = new Map<string, { type: string; options?: Record<string, string> }>();
  readonly auths = new Map<string, { type: string; tune: Record<string, unknown> }>();
  readonly users = new Map<string, { password: string; token_policies: string[] }>();
  readonly identityList: Identity[] = [];
  /** The roles of the AppRole mount (memoryStores ties it to its MemoryAppRole). */
  appRoleRolesOf: () => string[] = () => [];

  async listPolicies(): Promise<string[]> {
    return [...this.policies.keys()];
  }

  async appRoleRoles(): Promise<string[]> {
    return this.appRoleRolesOf();
  }

  async identities(): Promise<Identity[]> {
    return clone(this.identityList);
  }

  async listUserpassUsers(): Promise<string[]> {
    return [...this.users.keys()];
  }

  async readUserpassUser(_mount: string, user: string): Promise<{ policies: string[] } | null> {
    const u = this.users.get(user);
    return u ? { policies: [...u.token_policies] } : null;
  }

  async clusterId(): Promise<string> {
    return 'memory-cluster';
  }

  async mounts(): Promise<Record<string, { type: string; options?: Record<string, string> | null }>> {
    return Object.fromEntries([...this.mounted].map(([p, m]) => [`${p}/`, clone(m)]));
  }

  async mount(path: string, type: string, options: Record<string, string>): Promise<void> {
    if (this.mounted.has(path)) throw new VaultError(400, [`path is already in use at ${path}/`], 'sys.mount');
    this.mounted.set(path, { type, options });
  }

  async authMethods(): Promise<Record<string, { type: string }>> {
    return Object.fromEntries([...this.auths].map(([p, a]) => [`${p}/`, { type: a.type }]));
  }

  async enableAuth(path: string, type: string): Promise<void> {
    if (this.auths.has(path)) throw new VaultError(400, [`path is already in use at ${path}/`], 'sys.enable-auth');
    this.auths.set(path, { type, tune: {} });
  }

  async authTune(path: string): Promise<Record<string, unknown>> {
    return clone(this.auths.get(path)?.tune ?? {});
  }

  async tuneAuth(path: string, body: Record<string, unknown>): Promise<void> {
    const auth = this.auths.get(path);
    if (!auth) throw new VaultError(400, ['no auth mount'], 'sys.auth-tune');
    const lockout = (body.user_lockout_config ?? {}) as Record<string, string | boolean>;
    const seconds = (v: unknown) => Number(String(v).replace(/s$/, ''));
    if (lockout.lockout_threshold !== undefined) auth.tune.user_lockout_threshold = Number(lockout.lockout_threshold);
    if (lockout.lockout_duration !== undefined) auth.tune.user_lockout_duration = seconds(lockout.lockout_duration);
    if (lockout.lockout_counter_reset_duration !== undefined) auth.tune.user_lockout_counter_reset_duration = seconds(lockout.lockout_counter_reset_duration);
    if (lockout.lockout_disable !== undefined) auth.tune.user_lockout_disable = lockout.lockout_disable;
  }

  async writeUserpassUser(_mount: string, user: string, body: { password: string; token_policies: string[] }): Promise<void> {
    this.users.set(user, { password: body.password, token_policies: body.token_policies });
  }

  async userpassLogin(_mount: string, user: string, password: string): Promise<LoginAnswer> {
    return this.users.get(user)?.password === password ? { token: `memory-login-${user}` } : { refused: 'invalid' };
  }

  async revokeSelf(): Promise<void> {}
}

/** Vault's PKI engine in memory: the CA is a marker, signing is not done here. */
export class MemoryPki implements PkiStore {
  ca: string | null = null;
  readonly roles = new Map<string, unknown>();

  async caPem(): Promise<string | null> {
    return this.ca;
  }

  async tune(): Promise<void> {}

  async generateRoot(commonName: string): Promise<void> {
    this.ca = `memory CA ${commonName}`;
  }

  async importCa(pemBundle: string): Promise<void> {
    this.ca = pemBundle;
  }

  async writeRole(name: string, role: PkiRole): Promise<void> {
    this.roles.set(name, clone(role));
  }

  async writeNamesRole(name: string, names: string[], maxTtlSeconds: number): Promise<void> {
    this.roles.set(name, { names, maxTtlSeconds });
  }

  async sign(): Promise<SignedCertificate> {
    throw new Error('the in-memory PKI does not sign');
  }
}

/** An AppRole mount in memory: role ids and secret ids as Vault keeps them. */
export class MemoryAppRole implements AppRoleStore {
  readonly roles = new Map<string, { spec: AppRoleSpec; roleId: string; secretIds: Set<string> }>();

  async login(roleId: string, secretId: string): Promise<{ token: string } | { refused: 'invalid' | 'no-mount' }> {
    const role = [...this.roles.values()].find((r) => r.roleId === roleId);
    return role?.secretIds.has(secretId) ? { token: `memory-approle-${randomUUID()}` } : { refused: 'invalid' };
  }

  async writeRole(role: string, spec: AppRoleSpec): Promise<void> {
    const current = this.roles.get(role);
    this.roles.set(role, { spec: clone(spec), roleId: current?.roleId ?? randomUUID(), secretIds: current?.secretIds ?? new Set() });
  }

  async roleId(role: string): Promise<string | null> {
    return this.roles.get(role)?.roleId ?? null;
  }

  async setRoleId(role: string, roleId: string): Promise<void> {
    this.roles.get(role)!.roleId = roleId;
  }

  async hasSecretId(role: string, secretId: string): Promise<boolean> {
    return this.roles.get(role)?.secretIds.has(secretId) ?? false;
  }

  async replaceSecretIds(role: string, secretId: string): Promise<void> {
    this.roles.get(role)!.secretIds = new Set([secretId]);
  }
}

/** Every store init takes, in memory. */
export function memoryStores() {
  const stores = { setup: new MemorySetup(), kv: new MemoryKv(), pki: new MemoryPki(), appRole: new MemoryAppRole(), tokens: new MemoryTokens() };
  stores.setup.appRoleRolesOf = () => [...stores.appRole.roles.keys()];
  return stores;
}

/**
 * What a SecretService works with beside a store that checks no token: every reader reads the
 * secrets themselves, no managed secret is renewed, expiries are told to no one.
 */
export const MEMORY_SECRET_PARTS: SecretServiceParts = {
  managed: { reschedule: async () => undefined, forget: async () => undefined },
  readers: { groupOf: async () => null },
  expiry: { note: () => undefined },
};

/**
 * What the rules need of Vault, as small interfaces: the classes of this folder implement
 * them against Vault, and the tests implement them in memory (tests/support/memory-vault.ts),
 * so group, node and secret rules can be tested without a server as well as with one.
 */
export interface KvEntry<T> {
  data: T;
  version: number;
}

/** Check-and-set found another version than the one the write was based on. */
export class CasMismatch extends Error {
  constructor() {
    super('check-and-set version mismatch');
    this.name = 'CasMismatch';
  }
}

/** Check-and-set kept losing to concurrent writers until the retry budget ran out. */
export class CasExhausted extends Error {
  constructor(readonly path: string) {
    super(`gave up updating ${path}: too many concurrent changes`);
    this.name = 'CasExhausted';
  }
}

/** What an update function answers: the new value, or NO_CHANGE to leave the entry as it is. */
export const NO_CHANGE = Symbol('no change');

export interface CasBudget {
  attempts: number;
  ms: number;
}

/** How hard an update tries, and the entry as the caller read it just before (tried first, saving a read). */
export interface CasOptions<T> extends Partial<CasBudget> {
  seen?: KvEntry<T> | null;
}

export interface KvStore {
  read<T>(path: string, token: string, version?: number): Promise<KvEntry<T> | null>;
  write<T>(path: string, data: T, token: string, cas?: number): Promise<number>;
  /**
   * Writes only while the entry is at `version` (0: while it does not exist): the check-and-set
   * of every "create unless it exists" and "replace what was just read". Otherwise throws
   * `conflict()`, the caller's own error (a 409 saying what exists or changed). Answers the new version.
   */
  writeAt<T>(path: string, data: T, token: string, version: number, conflict: () => Error): Promise<number>;
  update<T>(path: string, token: string, fn: (current: T | null) => T | typeof NO_CHANGE, opts?: CasOptions<T>): Promise<T | null>;
  exists(path: string, token: string): Promise<boolean>;
  /** The current version from the entry's metadata (0: none), without reading the data. */
  version(path: string, token: string): Promise<number>;
  destroy(path: string, token: string): Promise<void>;
  list(path: string, token: string): Promise<string[]>;
  /** How many versions the mount keeps of each entry. */
  configure(maxVersions: number, token: string): Promise<void>;
}

export interface IssuedToken {
  token: string;
  accessor: string;
  /** Seconds. */
  ttl: number;
  meta: Record<string, string>;
}

export interface TokenInfo {
  accessor?: string;
  /** Where it was made: `auth/token/create/<role>` for a token from a role. */
  path?: string;
  policies: string[];
  meta: Record<string, string>;
  ttl: number;
}

export interface RoleSpec {
  allowed_policies: string[];
  orphan: boolean;
  token_period: number;
  renewable: true;
  token_no_default_policy: true;
  /** Service tokens only: a batch token can be neither listed nor revoked. */
  token_type: 'service';
}

export interface TokenStore {
  lookupSelf(token: string): Promise<TokenInfo>;
  renewSelf(token: string): Promise<IssuedToken>;
  renewAccessor(accessor: string, token: string): Promise<void>;
  /** The policies a token role may mint, or null for no such role. */
  readRole(name: string, token: string): Promise<{ allowed_policies: string[]; allowed_policies_glob: string[]; disallowed_policies: string[] } | null>;
  /** Where the token of `accessor` was made (`auth/token/create/<role>`) and its policies, or null for no such token. */
  accessorInfo(accessor: string, token: string): Promise<{ path: string; policies: string[] } | null>;
  /** Every token's accessor (Vault's root token: the list needs sudo). */
  listAccessors(token: string): Promise<string[]>;
  writeRole(name: string, spec: RoleSpec, token: string): Promise<void>;
  deleteRole(name: string, token: string): Promise<void>;
  listRoles(token: string): Promise<string[]>;
  createFromRole(role: string, token: string, meta: Record<string, string>): Promise<IssuedToken>;
  revokeRoleTokens(role: string, token: string): Promise<void>;
  updateRole(name: string, fields: Partial<RoleSpec>, token: string): Promise<void>;
}

export interface PolicyStore {
  putPolicy(name: string, policy: string, token: string): Promise<void>;
  readPolicy(name: string, token: string): Promise<string | null>;
  deletePolicy(name: string, token: string): Promise<void>;
}

/** rks's own session: runs work with its service token. */
export interface Session {
  run<T>(fn: (token: string) => Promise<T>): Promise<T>;
}

/** A login's outcome: a token, or why Vault refused it. */
export type LoginAnswer = { token: string } | { refused: 'invalid' | 'locked' };

/** The administrator's login (Vault's userpass). */
export interface LoginStore {
  userpassLogin(mount: string, user: string, password: string): Promise<LoginAnswer>;
}

export interface SignedCertificate {
  certificate: string;
  issuingCa: string;
  /** Unix seconds. */
  expiration: number;
}

/** What rks asks of Vault's PKI engine while it runs: its CA, a role per managed secret, signatures. */
export interface CertificateAuthority {
  /** The CA certificate (PEM), or null while there is none. */
  caPem(): Promise<string | null>;
  writeNamesRole(name: string, names: string[], maxTtlSeconds: number, token: string): Promise<void>;
  sign(role: string, csr: string, ttlSeconds: number, token: string): Promise<SignedCertificate>;
}

export interface PkiRole {
  server_flag: boolean;
  client_flag: boolean;
  key_usage: string[];
  max_ttl: string;
}

/** Vault's PKI engine as init sets it up, beside what rks asks of it while it runs. */
export interface PkiStore extends CertificateAuthority {
  tune(maxLeaseTtl: string, token: string): Promise<void>;
  generateRoot(commonName: string, ttl: string, token: string): Promise<void>;
  importCa(pemBundle: string, token: string): Promise<void>;
  writeRole(name: string, role: PkiRole, token: string): Promise<void>;
}

export interface AppRoleSpec {
  token_policies: string[];
  token_period: number;
  token_no_default_policy: true;
  token_type: 'service';
  bind_secret_id: true;
  secret_id_ttl: 0;
  secret_id_num_uses: 0;
  /** Set to nothing, not left as found: a role someone made before rks keeps none of its bounds. */
  token_bound_cidrs: [];
  secret_id_bound_cidrs: [];
  token_num_uses: 0;
  token_explicit_max_ttl: 0;
  token_ttl: 0;
  token_max_ttl: 0;
}

/** rks's own identity: an AppRole whose secret id only the administrator's password derives. */
export interface AppRoleStore {
  login(roleId: string, secretId: string): Promise<{ token: string } | { refused: 'invalid' | 'no-mount' }>;
  writeRole(role: string, spec: AppRoleSpec, token: string): Promise<void>;
  roleId(role: string, token: string): Promise<string | null>;
  setRoleId(role: string, roleId: string, token: string): Promise<void>;
  hasSecretId(role: string, secretId: string, token: string): Promise<boolean>;
  replaceSecretIds(role: string, secretId: string, token: string): Promise<void>;
}

/** An identity entity or group, with the policies it adds to every token of its members. */
export interface Identity {
  kind: 'entity' | 'group';
  id: string;
  name: string;
  policies: string[];
}

/** What init and a migration read of Vault to find what rks would own but did not make. */
export interface SurveyStore extends PolicyStore {
  mounts(token: string): Promise<Record<string, { type: string; options?: Record<string, string> | null }>>;
  authMethods(token: string): Promise<Record<string, { type: string }>>;
  listPolicies(token: string): Promise<string[]>;
  /** The role names of an AppRole mount. */
  appRoleRoles(mount: string, token: string): Promise<string[]>;
  identities(token: string): Promise<Identity[]>;
  listUserpassUsers(mount: string, token: string): Promise<string[]>;
  readUserpassUser(mount: string, user: string, token: string): Promise<{ policies: string[] } | null>;
}

/** The administrator's userpass user, every token setting given (none left as someone else set it). */
export interface UserpassUser {
  password: string;
  token_policies: string[];
  token_ttl: string;
  token_max_ttl: string;
  token_period: 0;
  token_type: 'service';
  token_bound_cidrs: [];
  token_num_uses: 0;
  token_explicit_max_ttl: 0;
  token_no_default_policy: false;
}

/** What init sets up in Vault: secrets engines, auth methods, policies, the administrator's user. */
export interface SetupStore extends SurveyStore, LoginStore {
  /** The cluster's id, which rks's identity is derived from. */
  clusterId(): Promise<string>;
  mounts(token: string): Promise<Record<string, { type: string; options?: Record<string, string> | null }>>;
  mount(path: string, type: string, options: Record<string, string>, token: string): Promise<void>;
  authMethods(token: string): Promise<Record<string, { type: string }>>;
  enableAuth(path: string, type: string, token: string): Promise<void>;
  authTune(path: string, token: string): Promise<Record<string, unknown>>;
  tuneAuth(path: string, body: Record<string, unknown>, token: string): Promise<void>;
  writeUserpassUser(mount: string, user: string, body: UserpassUser, token: string): Promise<void>;
  revokeSelf(token: string): Promise<void>;
}

/** Every store over one Vault, as init and the services take them. */
export interface VaultStores {
  setup: SetupStore;
  kv: KvStore;
  pki: PkiStore;
  appRole: AppRoleStore;
  tokens: TokenStore;
}

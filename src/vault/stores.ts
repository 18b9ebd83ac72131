import type { CasOptions, KvEntry, NO_CHANGE } from './kv';
import type { IssuedToken, RoleSpec, TokenInfo } from './tokens';

/**
 * What the rules need of Vault, as small interfaces: the classes of this folder implement
 * them against Vault, and the tests implement them in memory (tests/support/memory-vault.ts),
 * so group, node and secret rules can be tested without a server as well as with one.
 */
export interface KvStore {
  read<T>(path: string, token: string, version?: number): Promise<KvEntry<T> | null>;
  write<T>(path: string, data: T, token: string, cas?: number): Promise<number>;
  update<T>(path: string, token: string, fn: (current: T | null) => T | typeof NO_CHANGE, opts?: CasOptions<T>): Promise<T | null>;
  exists(path: string, token: string): Promise<boolean>;
  /** The current version from the entry's metadata (0: none), without reading the data. */
  version(path: string, token: string): Promise<number>;
  destroy(path: string, token: string): Promise<void>;
  list(path: string, token: string): Promise<string[]>;
}

export interface TokenStore {
  lookupSelf(token: string): Promise<TokenInfo>;
  renewSelf(token: string): Promise<IssuedToken>;
  renewAccessor(accessor: string, token: string): Promise<void>;
  writeRole(name: string, spec: RoleSpec, token: string): Promise<void>;
  deleteRole(name: string, token: string): Promise<void>;
  listRoles(token: string): Promise<string[]>;
  createFromRole(role: string, token: string, meta: Record<string, string>): Promise<IssuedToken>;
  revokeRoleTokens(role: string, token: string): Promise<void>;
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

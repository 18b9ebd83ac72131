import { VaultClient, isVaultError } from './client';
import type { IssuedToken, RoleSpec, TokenInfo, TokenStore } from './stores';



export interface RoleInfo {
  allowed_policies: string[];
  allowed_policies_glob: string[];
  disallowed_policies: string[];
}

/** A token as its accessor shows it: where it was made and what it carries. */
export interface AccessorInfo {
  accessor: string;
  /** The path it was made at, e.g. `auth/token/create/<role>` or `auth/userpass/login/<user>`. */
  path: string;
  /** Its token policies and those from its identity. */
  policies: string[];
  displayName: string;
  orphan: boolean;
}


/** The token store: roles, tokens made from them, renewal and revocation. */
export class Tokens implements TokenStore {
  constructor(private readonly vault: VaultClient) {}

  async lookupSelf(token: string): Promise<TokenInfo> {
    const res = await this.vault.call('GET', 'auth/token/lookup-self', { token, operation: 'token.lookup-self' });
    return { accessor: res.data.accessor, path: res.data.path, policies: res.data.policies ?? [], meta: res.data.meta ?? {}, ttl: Number(res.data.ttl ?? 0) };
  }

  async renewSelf(token: string): Promise<IssuedToken> {
    const res = await this.vault.call('POST', 'auth/token/renew-self', { token, operation: 'token.renew-self', body: {}, idempotent: true });
    return issued(res);
  }

  /** Renews another token by its accessor, without knowing the token. */
  async renewAccessor(accessor: string, token: string): Promise<void> {
    await this.vault.call('POST', 'auth/token/renew-accessor', { token, operation: 'token.renew-accessor', body: { accessor }, idempotent: true });
  }

  async accessorInfo(accessor: string, token: string): Promise<{ path: string; policies: string[] } | null> {
    return this.lookupAccessor(accessor, token);
  }

  async writeRole(name: string, spec: RoleSpec, token: string): Promise<void> {
    await this.vault.call('POST', `auth/token/roles/${name}`, { token, operation: 'token.write-role', body: spec, idempotent: true });
  }

  /** A token role's settings, or null when there is none. */
  async readRole(name: string, token: string): Promise<RoleInfo | null> {
    try {
      const res = await this.vault.call('GET', `auth/token/roles/${encodeURIComponent(name)}`, { token, operation: 'token.read-role' });
      return {
        allowed_policies: res.data.allowed_policies ?? [],
        allowed_policies_glob: res.data.allowed_policies_glob ?? [],
        disallowed_policies: res.data.disallowed_policies ?? [],
      };
    } catch (err) {
      if (isVaultError(err, 404)) return null;
      throw err;
    }
  }

  /** Sets some fields of an existing role, leaving the others as they are. */
  async updateRole(name: string, fields: Partial<RoleSpec>, token: string): Promise<void> {
    await this.vault.call('POST', `auth/token/roles/${encodeURIComponent(name)}`, { token, operation: 'token.write-role', body: fields, idempotent: true });
  }

  async deleteRole(name: string, token: string): Promise<void> {
    await this.vault.call('DELETE', `auth/token/roles/${encodeURIComponent(name)}`, { token, operation: 'token.delete-role' });
  }

  /** The accessor of every token Vault holds (needs sudo: the root token). */
  async listAccessors(token: string): Promise<string[]> {
    try {
      const res = await this.vault.call('LIST', 'auth/token/accessors', { token, operation: 'token.list-accessors' });
      return res.data.keys ?? [];
    } catch (err) {
      if (isVaultError(err, 404)) return [];
      throw err;
    }
  }

  /** What a token is, by its accessor; null when it is gone (revoked or expired meanwhile). */
  async lookupAccessor(accessor: string, token: string): Promise<AccessorInfo | null> {
    try {
      const res = await this.vault.call('POST', 'auth/token/lookup-accessor', { token, operation: 'token.lookup-accessor', body: { accessor }, idempotent: true });
      const d = res.data;
      return {
        accessor,
        path: String(d.path ?? ''),
        policies: [...(d.policies ?? []), ...(d.identity_policies ?? [])],
        displayName: String(d.display_name ?? ''),
        orphan: Boolean(d.orphan),
      };
    } catch (err) {
      if (isVaultError(err, 400) || isVaultError(err, 404)) return null;
      throw err;
    }
  }

  /** Revokes a token and its children, by accessor; fine for one already gone. */
  async revokeAccessor(accessor: string, token: string): Promise<void> {
    try {
      await this.vault.call('POST', 'auth/token/revoke-accessor', { token, operation: 'token.revoke-accessor', body: { accessor }, idempotent: true });
    } catch (err) {
      if (!isVaultError(err, 400)) throw err;
    }
  }

  async listRoles(token: string): Promise<string[]> {
    try {
      const res = await this.vault.call('LIST', 'auth/token/roles', { token, operation: 'token.list-roles' });
      return res.data.keys ?? [];
    } catch (err) {
      if (isVaultError(err, 404)) return [];
      throw err;
    }
  }

  /** A token from a role; a child of `token` unless the role makes orphans. */
  async createFromRole(role: string, token: string, meta: Record<string, string>): Promise<IssuedToken> {
    const res = await this.vault.call('POST', `auth/token/create/${role}`, {
      token,
      operation: 'token.create',
      body: { meta, display_name: role },
    });
    return issued(res);
  }

  /** Revokes every token created through `role`, and with each its children. */
  async revokeRoleTokens(role: string, token: string): Promise<void> {
    // Vault matches the prefix as whole path segments: role `..._1` does not reach `..._10`.
    await this.vault.call('POST', `sys/leases/revoke-prefix/auth/token/create/${role}`, {
      token,
      operation: 'token.revoke-prefix',
      body: {},
      idempotent: true,
    });
  }
}

function issued(res: any): IssuedToken {
  return { token: res.auth.client_token, accessor: res.auth.accessor, ttl: Number(res.auth.lease_duration), meta: res.auth.metadata ?? {} };
}

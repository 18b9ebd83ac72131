import { VaultClient, isVaultError } from './client';
import { clusterIdOf } from './identity';
import type { Identity, LoginAnswer, SetupStore, UserpassUser } from './stores';

/** Vault's system backend, the token store and userpass: what init and login need. */
export class Sys implements SetupStore {
  constructor(readonly vault: VaultClient) {}

  clusterId(): Promise<string> {
    return clusterIdOf(this.vault);
  }

  async revokeSelf(token: string): Promise<void> {
    await this.vault.call('POST', 'auth/token/revoke-self', { token, operation: 'token.revoke-self', body: {} });
  }

  /** Mount type by path (`rks/`), for the mounts the token can see. */
  async mounts(token: string): Promise<Record<string, { type: string; options?: Record<string, string> | null }>> {
    const res = await this.vault.call('GET', 'sys/mounts', { token, operation: 'sys.mounts' });
    return res.data ?? res;
  }

  async mount(path: string, type: string, options: Record<string, string>, token: string): Promise<void> {
    await this.vault.call('POST', `sys/mounts/${path}`, {
      token,
      operation: 'sys.mount',
      body: { type, options, description: 'rks' },
    });
  }

  async authMethods(token: string): Promise<Record<string, { type: string }>> {
    const res = await this.vault.call('GET', 'sys/auth', { token, operation: 'sys.auth' });
    return res.data ?? res;
  }

  async unmount(path: string, token: string): Promise<void> {
    await this.vault.call('DELETE', `sys/mounts/${path}`, { token, operation: 'sys.unmount' });
  }

  async disableAuth(path: string, token: string): Promise<void> {
    await this.vault.call('DELETE', `sys/auth/${path}`, { token, operation: 'sys.disable-auth' });
  }

  async appRoleRoles(mount: string, token: string): Promise<string[]> {
    return this.keys(`auth/${mount}/role`, 'approle.list-roles', token);
  }

  /** Every identity entity and group, with its policies. */
  async identities(token: string): Promise<Identity[]> {
    const out: Identity[] = [];
    for (const kind of ['entity', 'group'] as const) {
      for (const id of await this.keys(`identity/${kind}/id`, `identity.list-${kind}`, token)) {
        try {
          const res = await this.vault.call('GET', `identity/${kind}/id/${encodeURIComponent(id)}`, { token, operation: `identity.read-${kind}` });
          out.push({ kind, id, name: String(res.data.name ?? ''), policies: (res.data.policies ?? []) as string[] });
        } catch (err) {
          if (!isVaultError(err, 404)) throw err;
        }
      }
    }
    return out;
  }

  async deleteIdentity(kind: Identity['kind'], id: string, token: string): Promise<void> {
    await this.vault.call('DELETE', `identity/${kind}/id/${encodeURIComponent(id)}`, { token, operation: `identity.delete-${kind}` });
  }

  /** A LIST's keys; none when there is nothing (404). */
  private async keys(path: string, operation: string, token: string): Promise<string[]> {
    try {
      const res = await this.vault.call('LIST', path, { token, operation });
      return res?.data?.keys ?? [];
    } catch (err) {
      if (isVaultError(err, 404)) return [];
      throw err;
    }
  }

  async enableAuth(path: string, type: string, token: string): Promise<void> {
    await this.vault.call('POST', `sys/auth/${path}`, {
      token,
      operation: 'sys.enable-auth',
      body: { type, description: 'rks' },
    });
  }

  /** An auth mount's tuning, user lockout included (`user_lockout_threshold`, durations in seconds). */
  async authTune(path: string, token: string): Promise<Record<string, unknown>> {
    const res = await this.vault.call('GET', `sys/auth/${path}/tune`, { token, operation: 'sys.auth-tune-read' });
    return res.data ?? res;
  }

  async tuneAuth(path: string, body: Record<string, unknown>, token: string): Promise<void> {
    await this.vault.call('POST', `sys/auth/${path}/tune`, { token, operation: 'sys.auth-tune', body });
  }

  async putPolicy(name: string, policy: string, token: string): Promise<void> {
    await this.vault.call('PUT', `sys/policies/acl/${name}`, { token, operation: 'policy.write', body: { policy } });
  }

  async readPolicy(name: string, token: string): Promise<string | null> {
    try {
      const res = await this.vault.call('GET', `sys/policies/acl/${name}`, { token, operation: 'policy.read' });
      return res.data.policy as string;
    } catch (err) {
      if (isVaultError(err, 404)) return null;
      throw err;
    }
  }

  async listPolicies(token: string): Promise<string[]> {
    const res = await this.vault.call('LIST', 'sys/policies/acl', { token, operation: 'sys.list-policies' });
    return res?.data?.keys ?? [];
  }

  async deletePolicy(name: string, token: string): Promise<void> {
    await this.vault.call('DELETE', `sys/policies/acl/${name}`, { token, operation: 'policy.delete' });
  }

  async writeUserpassUser(
    mount: string,
    user: string,
    body: UserpassUser,
    token: string,
  ): Promise<void> {
    await this.vault.call('POST', `auth/${mount}/users/${encodeURIComponent(user)}`, {
      token,
      operation: 'userpass.write-user',
      body,
    });
  }

  /** A userpass user's policies, or null when there is no such user. */
  async readUserpassUser(mount: string, user: string, token: string): Promise<{ policies: string[] } | null> {
    try {
      const res = await this.vault.call('GET', `auth/${mount}/users/${encodeURIComponent(user)}`, { token, operation: 'userpass.read-user' });
      return { policies: [...new Set<string>([...(res.data.token_policies ?? []), ...(res.data.policies ?? [])])] };
    } catch (err) {
      if (isVaultError(err, 404)) return null;
      throw err;
    }
  }

  async listUserpassUsers(mount: string, token: string): Promise<string[]> {
    try {
      const res = await this.vault.call('LIST', `auth/${mount}/users`, { token, operation: 'userpass.list-users' });
      return res.data.keys ?? [];
    } catch (err) {
      if (isVaultError(err, 404)) return [];
      throw err;
    }
  }

  async deleteUserpassUser(mount: string, user: string, token: string): Promise<void> {
    await this.vault.call('DELETE', `auth/${mount}/users/${encodeURIComponent(user)}`, { token, operation: 'userpass.delete-user' });
  }

  /**
   * Logs in to a userpass mount. Vault answers 400 to wrong credentials and 403 ("permission
   * denied", without checking the password) to a user its lockout holds.
   */
  async userpassLogin(mount: string, user: string, password: string): Promise<LoginAnswer> {
    try {
      const res = await this.vault.call('POST', `auth/${mount}/login/${encodeURIComponent(user)}`, {
        token: null,
        operation: 'userpass.login',
        body: { password },
      });
      return { token: res.auth.client_token as string };
    } catch (err) {
      if (isVaultError(err, 400)) return { refused: 'invalid' };
      if (isVaultError(err, 403)) return { refused: 'locked' };
      throw err;
    }
  }
}


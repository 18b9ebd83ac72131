import { VaultClient, isVaultError } from './client';
import type { AppRoleSpec, AppRoleStore } from './stores';


/** An AppRole auth mount: rks's own identity (see layout.SERVICE_AUTH_PATH). */
export class AppRole implements AppRoleStore {
  constructor(
    private readonly vault: VaultClient,
    private readonly mount: string,
  ) {}

  /**
   * Logs in. Vault answers 400 to credentials it does not know, and 403 when there is no such
   * mount (a Vault initialised before rks had a service identity).
   */
  async login(roleId: string, secretId: string): Promise<{ token: string } | { refused: 'invalid' | 'no-mount' }> {
    try {
      const res = await this.vault.call('POST', `auth/${this.mount}/login`, {
        token: null,
        operation: 'approle.login',
        body: { role_id: roleId, secret_id: secretId },
      });
      return { token: res.auth.client_token as string };
    } catch (err) {
      if (isVaultError(err, 400)) return { refused: 'invalid' };
      if (isVaultError(err, 403) || isVaultError(err, 404)) return { refused: 'no-mount' };
      throw err;
    }
  }

  async writeRole(role: string, spec: AppRoleSpec, token: string): Promise<void> {
    await this.vault.call('POST', `auth/${this.mount}/role/${role}`, { token, operation: 'approle.write-role', body: spec });
  }

  /** The role's role_id, or null when the role does not exist. */
  async roleId(role: string, token: string): Promise<string | null> {
    try {
      const res = await this.vault.call('GET', `auth/${this.mount}/role/${role}/role-id`, { token, operation: 'approle.role-id' });
      return (res?.data?.role_id as string) ?? null;
    } catch (err) {
      if (isVaultError(err, 404) || isVaultError(err, 400)) return null;
      throw err;
    }
  }

  async setRoleId(role: string, roleId: string, token: string): Promise<void> {
    await this.vault.call('POST', `auth/${this.mount}/role/${role}/role-id`, { token, operation: 'approle.set-role-id', body: { role_id: roleId } });
  }

  /** True when `secretId` is a live secret id of the role. */
  async hasSecretId(role: string, secretId: string, token: string): Promise<boolean> {
    try {
      const res = await this.vault.call('POST', `auth/${this.mount}/role/${role}/secret-id/lookup`, {
        token,
        operation: 'approle.lookup-secret-id',
        body: { secret_id: secretId },
      });
      return Boolean(res?.data);
    } catch (err) {
      if (isVaultError(err, 404) || isVaultError(err, 400)) return false;
      throw err;
    }
  }

  /** Replaces every secret id of the role with `secretId`: the new one first, then the others. */
  async replaceSecretIds(role: string, secretId: string, token: string): Promise<void> {
    const created = await this.vault.call('POST', `auth/${this.mount}/role/${role}/custom-secret-id`, {
      token,
      operation: 'approle.custom-secret-id',
      body: { secret_id: secretId },
    });
    const keep = created?.data?.secret_id_accessor as string | undefined;
    let accessors: string[] = [];
    try {
      const res = await this.vault.call('LIST', `auth/${this.mount}/role/${role}/secret-id`, { token, operation: 'approle.list-secret-ids' });
      accessors = res?.data?.keys ?? [];
    } catch (err) {
      if (!isVaultError(err, 404)) throw err;
    }
    for (const accessor of accessors.filter((a) => a !== keep)) {
      await this.vault.call('POST', `auth/${this.mount}/role/${role}/secret-id-accessor/destroy`, {
        token,
        operation: 'approle.destroy-secret-id',
        body: { secret_id_accessor: accessor },
      });
    }
  }
}

import { VaultClient, isVaultError } from './client';
import { KV_MOUNT, kvData, kvMetadata } from './layout';
import { CasExhausted, CasMismatch, CasOptions, KvEntry, KvStore, NO_CHANGE } from './stores';

/** KV v2 under rks's mount. Paths are relative to the mount (see layout.kvPath). */
export class Kv implements KvStore {
  constructor(private readonly vault: VaultClient) {}

  /** Keeps at most `maxVersions` versions of every entry (older private keys are destroyed), and no setting someone else made. */
  async configure(maxVersions: number, token: string): Promise<void> {
    await this.vault.call('POST', `${KV_MOUNT}/config`, { token, operation: 'kv.config', body: { max_versions: maxVersions, cas_required: false, delete_version_after: '0s' } });
  }

  /** The current version (or `version`), or null when there is none (never written, deleted or destroyed). */
  async read<T>(path: string, token: string, version?: number): Promise<KvEntry<T> | null> {
    try {
      const res = await this.vault.call('GET', kvData(path) + (version ? `?version=${version}` : ''), { token, operation: 'kv.read' });
      const d = res?.data;
      if (!d || d.data === null || d.data === undefined) return null;
      return { data: d.data as T, version: Number(d.metadata?.version ?? 0) };
    } catch (err) {
      if (isVaultError(err, 404)) return null;
      throw err;
    }
  }

  /**
   * Writes a new version. With `cas` the write only happens when the current version is
   * `cas` (0: only when absent); otherwise CasMismatch. Resolves with the new version.
   */
  async write<T>(path: string, data: T, token: string, cas?: number): Promise<number> {
    let resent = false;
    try {
      const res = await this.vault.call('POST', kvData(path), {
        token,
        operation: 'kv.write',
        body: cas === undefined ? { data } : { data, options: { cas } },
        // Sent twice, a check-and-set write cannot write twice.
        idempotent: cas !== undefined,
        onResend: () => (resent = true),
      });
      return Number(res?.data?.version ?? 0);
    } catch (err) {
      if (isVaultError(err, 400, 'check-and-set')) {
        // Sent again after a broken connection, it may find its own first attempt: not a conflict.
        const current = resent ? await this.read<T>(path, token).catch(() => null) : null;
        if (current && current.version === cas! + 1 && JSON.stringify(current.data) === JSON.stringify(data)) return current.version;
        throw new CasMismatch();
      }
      throw err;
    }
  }

  /**
   * Read-modify-write with check-and-set, retried with jittered backoff when another writer
   * got there first. `fn` sees the current value (null when absent) and may throw to abort.
   * Resolves with the value now stored.
   */
  writeAt<T>(path: string, data: T, token: string, version: number, conflict: () => Error): Promise<number> {
    return casWrite(this, path, data, token, version, conflict);
  }

  async update<T>(
    path: string,
    token: string,
    fn: (current: T | null) => T | typeof NO_CHANGE,
    opts?: CasOptions<T>,
  ): Promise<T | null> {
    return casUpdate(this, path, token, fn, opts);
  }

  /** True when the current version exists, without reading the data itself. */
  async exists(path: string, token: string): Promise<boolean> {
    try {
      const res = await this.vault.call('GET', kvMetadata(path), { token, operation: 'kv.metadata' });
      const meta = res?.data;
      const current = meta?.versions?.[String(meta?.current_version)];
      return Boolean(current && !current.destroyed && !current.deletion_time);
    } catch (err) {
      if (isVaultError(err, 404)) return false;
      throw err;
    }
  }

  async version(path: string, token: string): Promise<number> {
    try {
      const res = await this.vault.call('GET', kvMetadata(path), { token, operation: 'kv.metadata' });
      return Number(res?.data?.current_version ?? 0);
    } catch (err) {
      if (isVaultError(err, 404)) return 0;
      throw err;
    }
  }

  /** Destroys every version and the metadata; absent paths are fine. */
  async destroy(path: string, token: string): Promise<void> {
    await this.vault.call('DELETE', kvMetadata(path), { token, operation: 'kv.destroy' });
  }

  async list(path: string, token: string): Promise<string[]> {
    try {
      const res = await this.vault.call('LIST', kvMetadata(path), { token, operation: 'kv.list' });
      return (res?.data?.keys as string[]) ?? [];
    } catch (err) {
      if (isVaultError(err, 404)) return [];
      throw err;
    }
  }
}

/**
 * Read-modify-write with check-and-set, retried with jittered backoff when another writer
 * got there first. `fn` sees the current value (null when absent) and may throw to abort.
 * Resolves with the value now stored. Works on any KvStore.
 */
/** KvStore.writeAt over a store's check-and-set write, for every implementation. */
export async function casWrite<T>(store: Pick<KvStore, 'write'>, path: string, data: T, token: string, version: number, conflict: () => Error): Promise<number> {
  try {
    return await store.write(path, data, token, version);
  } catch (err) {
    throw err instanceof CasMismatch ? conflict() : err;
  }
}

export async function casUpdate<T>(
  store: Pick<KvStore, 'read' | 'write'>,
  path: string,
  token: string,
  fn: (current: T | null) => T | typeof NO_CHANGE,
  { attempts = 100, ms = 10_000, seen }: CasOptions<T> = {},
): Promise<T | null> {
  const deadline = Date.now() + ms;
  for (let attempt = 1; ; attempt++) {
    const current = attempt === 1 && seen !== undefined ? seen : await store.read<T>(path, token);
    const next = fn(current?.data ?? null);
    if (next === NO_CHANGE) return current?.data ?? null;
    try {
      await store.write(path, next, token, current?.version ?? 0);
      return next;
    } catch (err) {
      if (!(err instanceof CasMismatch)) throw err;
      if (attempt >= attempts || Date.now() >= deadline) throw new CasExhausted(path);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * attempt)));
    }
  }
}

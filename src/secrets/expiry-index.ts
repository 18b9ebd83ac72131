import { createHash } from 'node:crypto';
import { NO_CHANGE } from '../vault/kv';
import { kvPath } from '../vault/layout';
import type { KvStore } from '../vault/stores';

/** 64 shards: at 100 000 secrets each holds about 1 600 names (≈ 80 KB), read in 64 calls. */
export const EXPIRY_SHARDS = 64;
const READ_CONCURRENCY = 8;

interface Shard {
  /** fqdn → notAfter, in seconds since the epoch. */
  expires: Record<string, number>;
}

export const shardOf = (fqdn: string): string => (createHash('sha256').update(fqdn).digest()[0] % EXPIRY_SHARDS).toString(16).padStart(2, '0');
const SHARD_NAMES = Array.from({ length: EXPIRY_SHARDS }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Every secret's expiry in a few KV entries, so that "what expires soon" costs 64 reads for any
 * number of secrets instead of one read (and one certificate parse) per secret. Kept by every
 * push and delete; secrets it misses (stored before it existed, or a crash between the two
 * writes) are added by the next inventory listing that asks about expiry.
 */
export class ExpiryIndex {
  constructor(private readonly kv: KvStore) {}

  /** Records `fqdn`'s expiry (ISO 8601), or forgets it (null). */
  async set(token: string, fqdn: string, notAfter: string | null): Promise<void> {
    const at = notAfter === null ? null : Math.floor(Date.parse(notAfter) / 1000);
    await this.kv.update<Shard>(kvPath.expiryShard(shardOf(fqdn)), token, (shard) => {
      const expires = { ...(shard?.expires ?? {}) };
      if (at === null ? !(fqdn in expires) : expires[fqdn] === at) return NO_CHANGE;
      if (at === null) delete expires[fqdn];
      else expires[fqdn] = at;
      return { expires };
    });
  }

  /** Every recorded secret and its expiry (seconds since the epoch). */
  async all(token: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const queue = [...SHARD_NAMES];
    await Promise.all(
      Array.from({ length: READ_CONCURRENCY }, async () => {
        for (let shard = queue.shift(); shard !== undefined; shard = queue.shift()) {
          const entry = await this.kv.read<Shard>(kvPath.expiryShard(shard), token);
          for (const [fqdn, at] of Object.entries(entry?.data.expires ?? {})) out.set(fqdn, at);
        }
      }),
    );
    return out;
  }
}

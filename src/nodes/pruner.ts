import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { groupsIn, kvPath } from '../vault/layout';
import type { KvStore, Session, TokenStore } from '../vault/stores';
import { forgetNode } from './forget';
import type { NodeRecords } from '../records/nodes';

/**
 * Forgets nodes that neither registered nor renewed their token through rks for `idleMs`:
 * their tokens have long expired, and their records and roles would otherwise count against
 * the group's node limit for ever. A pruned node that comes back simply registers again.
 * Several rks instances may prune at once: every step is idempotent.
 */
export class NodePruner {
  constructor(
    private readonly kv: KvStore,
    private readonly nodes: NodeRecords,
    private readonly tokens: TokenStore,
    private readonly session: Session,
    private readonly idleMs: number,
    private readonly logger: Logger,
    private readonly pruned?: Counter,
  ) {}

  /** One round; answers how many nodes were forgotten. */
  async pruneAll(): Promise<number> {
    let count = 0;
    try {
      await this.session.run(async (t) => {
        const cutoff = Date.now() - this.idleMs;
        for (const g of groupsIn(await this.kv.list(kvPath.groups, t))) {
          for (const n of await this.nodes.ids(t, g)) {
            try {
              const record = await this.nodes.read(t, g, n);
              // A date from the future is no sign of life: nobody but rks writes these, at the time.
              const seen = Date.parse(record?.data.seenAt ?? '');
              if (!record || (seen > cutoff && seen <= Date.now() + 86_400_000)) continue;
              await forgetNode(this.nodes, this.tokens, g, n, t);
              this.pruned?.inc();
              count++;
              this.logger.info({ group: g, node: n, seenAt: record.data.seenAt }, 'idle node forgotten');
            } catch (err) {
              this.logger.warn({ group: g, node: n, err: (err as Error).message }, 'pruning a node failed; will retry');
            }
          }
        }
      });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'node pruning round failed; will retry');
    }
    return count;
  }
}

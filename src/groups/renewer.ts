import type { Logger } from 'pino';
import { groupsIn, kvPath } from '../vault/layout';
import type { KvStore, Session, TokenStore } from '../vault/stores';
import type { GroupTokenAccessor } from '../records/groups';

/**
 * Keeps every group token alive: group tokens are periodic, and a period without renewal
 * would revoke the token and every node under it. Failures are logged and retried on the
 * next round; they never stop rks.
 */
export class GroupTokenRenewer {
  constructor(
    private readonly kv: KvStore,
    private readonly tokens: TokenStore,
    private readonly session: Session,
    private readonly logger: Logger,
  ) {}

  /** One round; answers how many group tokens were renewed. */
  async renewAll(): Promise<number> {
    let renewed = 0;
    try {
      await this.session.run(async (t) => {
        const groups = groupsIn(await this.kv.list(kvPath.groups, t));
        for (const g of groups) {
          try {
            const record = await this.kv.read<GroupTokenAccessor>(kvPath.groupTokenAccessor(g), t);
            if (!record) {
              this.logger.warn({ group: g }, 'group has no token accessor record (run init again to add it); its token is not renewed');
              continue;
            }
            await this.tokens.renewAccessor(record.data.accessor, t);
            renewed++;
          } catch (err) {
            this.logger.warn({ group: g, err: String((err as Error).message) }, 'group token renewal failed; will retry');
          }
        }
      });
      this.logger.debug({ renewed }, 'group tokens renewed');
    } catch (err) {
      this.logger.warn({ err: String((err as Error).message) }, 'group token renewal round failed; will retry');
    }
    return renewed;
  }
}

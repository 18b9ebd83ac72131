import type { Logger } from 'pino';
import { groupTokenName, groupsIn, kvPath } from '../vault/layout';
import type { KvStore, Session, TokenStore } from '../vault/stores';
import { isDenied } from '../vault/client';
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
            // The record is an administrator's to write: only the group's own token is kept alive,
            // never another one whose accessor was put there.
            const made = await this.tokens.accessorInfo(record.data.accessor, t).then((i) => i && i.path, (err) => {
              // An identity from before the check (init not run again): renewed unchecked, as it was.
              if (!isDenied(err)) throw err;
              this.logger.warn({ group: g }, "rks's identity may not look group tokens up yet: renewed unchecked; run init again");
              return undefined;
            });
            if (made === null) continue; // gone (a rotation or a deletion meanwhile): nothing to renew
            if (made !== undefined && made.toLowerCase() !== `auth/token/create/${groupTokenName(g)}`) {
              this.logger.warn({ group: g }, "the accessor on record is not the group's token: not renewed (rotate the group token to set it right)");
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

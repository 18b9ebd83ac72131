import { isSecretName } from '../names';
import { kvPath } from '../vault/layout';
import { KvEntry, KvStore } from '../vault/stores';
import type { RenewalState } from '../records/secrets';

/** A managed secret that the schedule's index says is due. */
export interface DueMark {
  fqdn: string;
  /** When it is due (seconds since the epoch), as the mark says. */
  at: number;
}

const MARK = /^(\d{1,12})-(.+)$/;

/**
 * When a state next needs a look: its renewal, or before that a look at the CA's renewal window
 * (not while an instance holds it: the claim's end is when to look again).
 */
export function wakeAt(s: RenewalState): number {
  return !s.inProgress && s.ariAt !== undefined && s.ariAt < s.renewAt ? s.ariAt : s.renewAt;
}

/**
 * The renewal schedule: one small state entry per managed secret, and an index of empty marks
 * named by when each is due, in hourly folders, so that a pass lists the hours gone by and reads
 * only what is due, whatever the number of managed secrets.
 *
 * A state's mark is written before the state and the mark before it removed after: every state
 * has its mark, whatever fails in between. A mark left behind (a write that lost its
 * check-and-set, a crash) is dropped when a pass finds that its state says otherwise.
 */
export class RenewalSchedule {
  constructor(private readonly kv: KvStore) {}

  read(token: string, fqdn: string): Promise<KvEntry<RenewalState> | null> {
    return this.kv.read<RenewalState>(kvPath.managedState(fqdn), token);
  }

  /**
   * Replaces the state `seen` (null: none yet) with `next`; throws CasMismatch when it is no
   * longer the one stored. Answers the entry written. `marked`: `next`'s mark was written
   * already (see mark), beside other writes. `unmarked`: told of the old mark's removal instead
   * of waiting for it (a mark left behind is dropped by a pass anyway).
   */
  async put(
    token: string,
    fqdn: string,
    next: RenewalState,
    seen: KvEntry<RenewalState> | null,
    opts: { marked?: boolean; unmarked?: (p: Promise<void>) => void } = {},
  ): Promise<KvEntry<RenewalState>> {
    const [before, after] = [seen && wakeAt(seen.data), wakeAt(next)];
    if (before !== after && !opts.marked) await this.mark(token, fqdn, next);
    const version = await this.kv.write(kvPath.managedState(fqdn), next, token, seen?.version ?? 0);
    if (seen && Number.isSafeInteger(before) && before !== after) {
      const unmark = this.unmark(token, { fqdn, at: before! });
      if (opts.unmarked) opts.unmarked(unmark);
      else await unmark;
    }
    return { data: next, version };
  }

  /** The mark `next` needs, written ahead of the `put` that stores it. */
  async mark(token: string, fqdn: string, next: RenewalState): Promise<void> {
    await this.kv.write(kvPath.managedDueMark(wakeAt(next), fqdn), {}, token);
  }

  /**
   * The secret is no longer renewed: its state and its mark go (the state first: a mark without
   * one is dropped). `seen`: its state as just read, if it was.
   */
  async remove(token: string, fqdn: string, seen?: KvEntry<RenewalState> | null): Promise<void> {
    if (seen === undefined) seen = await this.read(token, fqdn);
    if (!seen) return;
    await this.kv.destroy(kvPath.managedState(fqdn), token);
    const at = wakeAt(seen.data);
    if (Number.isSafeInteger(at)) await this.unmark(token, { fqdn, at });
  }

  /** Marks due at `t` or before, soonest first: a listing of the hours, then of each hour gone by. */
  async due(token: string, t: number): Promise<DueMark[]> {
    const now = Math.floor(t / 3600);
    const hours = (await this.kv.list(kvPath.managedDue, token))
      .map((k) => (/^\d{1,9}\/$/.test(k) ? Number(k.slice(0, -1)) : NaN))
      .filter((h) => h <= now)
      .sort((a, b) => a - b);
    const out: DueMark[] = [];
    for (const h of hours) {
      for (const key of await this.kv.list(kvPath.managedDueHour(h), token)) {
        const m = MARK.exec(key);
        if (!m || !isSecretName(m[2])) continue;
        const at = Number(m[1]);
        if (at <= t && Math.floor(at / 3600) === h) out.push({ fqdn: m[2]!, at });
      }
    }
    return out.sort((a, b) => a.at - b.at || (a.fqdn < b.fqdn ? -1 : 1));
  }

  /** Drops a mark (a state that moved on, or one no longer renewed). */
  async unmark(token: string, mark: DueMark): Promise<void> {
    await this.kv.destroy(kvPath.managedDueMark(mark.at, mark.fqdn), token);
  }
}

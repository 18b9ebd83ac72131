import { isSecretName } from '../names';
import { kvPath } from '../vault/layout';
import { CasMismatch, KvEntry, KvStore } from '../vault/stores';
import type { ChangeEntry, ChangeOp, GroupSerial } from '../records/groups';
import type { ListDelta } from '../sdk/wire';

/**
 * Changes a serial remembers: an edge further behind gets the whole list. Its nodes read the
 * serial once a second per group and rks instance, so it stays small: at most 256 lines and
 * 12,000 bytes of text (one string, not a list: Vault bounds the members of a list, and its
 * operators may bound them tightly).
 */
export const CHANGES_KEPT = 256;
const LOG_BYTES = 12_000;
const LINE = /^(\d{1,15}) ([ark]) (\S{1,253})$/;
/** Rounds of read, append and check-and-set before the log is started afresh (see record). */
const ROUNDS = 10;


/** The well-formed entries of a serial as read (anyone who may write it may write anything). */
export function changesOf(serial: GroupSerial): ChangeEntry[] {
  if (typeof serial.log !== 'string') return [];
  const out: ChangeEntry[] = [];
  // Only as much as rks keeps is looked at, whatever was written there.
  for (const line of serial.log.slice(-LOG_BYTES).split('\n').slice(-CHANGES_KEPT)) {
    const m = LINE.exec(line);
    if (m && isSecretName(m[3]!)) out.push([Number(m[1]), m[3]!, m[2] as ChangeOp]);
  }
  return out;
}

/**
 * The entries as a serial keeps them: the newest that fit, by whole versions (a version kept in
 * part would read as whole, and an edge would miss the rest). A version too large to fit leaves
 * the log empty: edges behind it get the whole list.
 */
function logOf(entries: ChangeEntry[]): string {
  const lines = entries.map(([v, name, op]) => `${v} ${op} ${name}`);
  let start = Math.max(0, lines.length - CHANGES_KEPT);
  let bytes = lines.slice(start).reduce((n, l) => n + l.length + 1, 0);
  while (bytes > LOG_BYTES) bytes -= lines[start++]!.length + 1;
  while (start > 0 && start < entries.length && entries[start]![0] === entries[start - 1]![0]) start++;
  return lines.slice(start).join('\n');
}

/**
 * What changed from version `from` to `to` of a group's serial, or null when its log does not
 * say for every version in between (too far behind, or a version written by an rks that kept
 * no log): then only the whole list says what stands.
 */
export function deltaOf(serial: GroupSerial, from: number, to: number): ListDelta | null {
  if (from >= to) return { added: [], removed: [], replaced: [] };
  const entries = changesOf(serial).filter(([v]) => v > from && v <= to);
  const versions = new Set(entries.map(([v]) => v));
  for (let v = from + 1; v <= to; v++) if (!versions.has(v)) return null;
  const last = new Map<string, { member?: boolean; key: boolean }>();
  for (const [, name, op] of entries.sort((a, b) => a[0] - b[0])) {
    const s = last.get(name) ?? { key: false };
    if (op === 'k') s.key = true;
    else s.member = op === 'a';
    last.set(name, s);
  }
  const delta: ListDelta = { added: [], removed: [], replaced: [] };
  for (const [name, s] of [...last].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (s.member === true) delta.added.push(name);
    else if (s.member === false) delta.removed.push(name);
    else delta.replaced.push(name);
  }
  return delta;
}

/**
 * A group's serial: its version names the group's list (the nodes' ETag), and it remembers
 * the last changes, so that an edge a few versions behind learns what changed since, not the
 * whole list. Every change of the list or of a key in it writes a new version with its
 * entries, by check-and-set on the version read.
 */
export class ChangeLog {
  /** By group and token: the write in flight, and the changes that wait for it to end. */
  private readonly writes = new Map<string, { running: Promise<void>; next?: { changes: [string, ChangeOp][]; done: Promise<void> } }>();

  constructor(private readonly kv: KvStore) {}

  /**
   * Records `changes` in `g`'s serial as a new version (`seen`: the serial as read after the
   * change, when the caller read it). A group without a serial (gone meanwhile, or not moved to
   * copies yet) gets none. After many lost races the log starts afresh, which sends edges
   * behind it the whole list: never a delta that misses a change.
   *
   * One write at a time per group (and caller's token) in this process: changes that come while
   * one is in flight wait for it and go together in the next, read afresh. Without that, every
   * association of a bulk import raced every other for the serial's check-and-set, and Vault
   * spent its time on writes that lost.
   */
  record(token: string, g: string, changes: [name: string, op: ChangeOp][], seen?: KvEntry<GroupSerial> | null): Promise<void> {
    const key = `${g}\n${token}`;
    const current = this.writes.get(key);
    if (current?.next) {
      current.next.changes.push(...changes);
      return current.next.done;
    }
    const after = (write: () => Promise<void>): Promise<void> => {
      const running = write().finally(() => {
        const entry = this.writes.get(key);
        if (entry?.running === running && !entry.next) this.writes.delete(key);
      });
      return running;
    };
    if (!current) {
      const running = after(() => this.write(token, g, changes, seen));
      this.writes.set(key, { running });
      return running;
    }
    const next = { changes: [...changes], done: Promise.resolve() };
    next.done = current.running
      .catch(() => undefined)
      .then(() => {
        // From here on, new changes wait for this write: read after every one of these was made.
        const running = after(() => this.write(token, g, next.changes));
        this.writes.set(key, { running });
        return running;
      });
    current.next = next;
    return next.done;
  }

  private async write(token: string, g: string, changes: [name: string, op: ChangeOp][], seen?: KvEntry<GroupSerial> | null): Promise<void> {
    let serial = seen === undefined ? await this.kv.read<GroupSerial>(kvPath.groupSerial(g), token) : seen;
    for (let round = 1; serial; round++) {
      const version = serial.version + 1;
      const kept = round < ROUNDS ? changesOf(serial.data) : [];
      const log = logOf([...kept, ...changes.map(([name, op]): ChangeEntry => [version, name, op])]);
      try {
        await this.kv.write<GroupSerial>(kvPath.groupSerial(g), { incarnation: serial.data.incarnation, log }, token, round < ROUNDS ? serial.version : undefined);
        return;
      } catch (err) {
        if (!(err instanceof CasMismatch)) throw err;
      }
      serial = await this.kv.read<GroupSerial>(kvPath.groupSerial(g), token);
    }
  }
}

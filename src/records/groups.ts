import { BadRequest, NotFound, alreadyExists } from '../errors';
import { isName } from '../names';
import { kvPath } from '../vault/layout';
import type { KvEntry, KvStore } from '../vault/stores';

/**
 * The records rks keeps of a group in Vault (`rks/data/groups/<g>/…`), with the rules they are
 * read back by.
 */

/** A group's registration info, as the API carries it and `rks/data/groups/<g>/config` holds it. */
export interface GroupRegInfo {
  callbackURL: string;
  oauthURL: string;
  oauthClientID: string;
  oauthClientSecret: string;
}

const FIELDS = ['callbackURL', 'oauthURL', 'oauthClientID', 'oauthClientSecret'] as const;

/** The rules a group's callback settings follow: an https callback needs its OAuth client. */
export function checkRegInfo(info: GroupRegInfo): void {
  if (info.callbackURL && !(info.oauthURL && info.oauthClientID && info.oauthClientSecret)) {
    throw new BadRequest('a callbackURL needs oauthURL, oauthClientID and oauthClientSecret');
  }
  for (const [field, value] of [
    ['callbackURL', info.callbackURL],
    ['oauthURL', info.oauthURL],
  ] as const) {
    if (!value) continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new BadRequest(`${field} is not a valid URL`);
    }
    if (url.protocol !== 'https:' || url.username || url.password || url.hash) {
      throw new BadRequest(`${field} must be an https URL without credentials or fragment`);
    }
  }
}

/**
 * A group config record read back from Vault, held to the same rules as the API: exactly the
 * four string fields, and settings rks can verify with. Anything else (a record another server
 * wrote in its own shape, say) is refused, so callback verification fails closed instead of
 * being skipped for a field rks cannot see.
 */
export function storedRegInfo(record: unknown): GroupRegInfo {
  const r = record as Record<string, unknown> | null;
  if (!r || typeof r !== 'object' || Array.isArray(r)) throw new BadRequest('the group config is not an object');
  const extra = Object.keys(r).filter((k) => !(FIELDS as readonly string[]).includes(k));
  if (extra.length) throw new BadRequest(`the group config holds fields rks does not know (${extra.slice(0, 4).join(', ')})`);
  for (const f of FIELDS) if (typeof r[f] !== 'string') throw new BadRequest(`the group config has no string ${f}`);
  const info = r as unknown as GroupRegInfo;
  checkRegInfo(info);
  return info;
}

/**
 * At `rks/data/groups/<g>/serial`, rewritten on every change of the group's associations: its
 * version, with the incarnation (a group made again starts over at version 1), names the list
 * the group's nodes hold.
 */
export interface GroupSerial {
  incarnation: string;
  /** The last changes of the group's list, oldest first, a line each: `<version> <op> <name>` (see secrets/changes.ts). */
  log?: string;
}

/** What happened to a name in a group's list: associated, removed, or its key replaced. */
export type ChangeOp = 'a' | 'r' | 'k';
/** One change: the serial's version that recorded it, the name, what happened. */
export type ChangeEntry = [version: number, name: string, op: ChangeOp];

/** A node an administrator revoked, at `rks/data/groups/<g>/revoked/<nodeId>`. */
export interface RevokedNode {
  revokedAt: string;
}

export interface GroupTokenRecord {
  groupToken: string;
  accessor: string;
}

/** Kept apart from the token, for rks's own identity, which renews group tokens by accessor. */
export interface GroupTokenAccessor {
  accessor: string;
}

/** A group's list in the layout before 4 (and the classic's, once rewritten in rks's shape). */
export interface GroupSecretList {
  secrets: string[];
}

export function groupNotFound(g: string): NotFound {
  return new NotFound(`group '${g}' not found`);
}

/**
 * A group's config, which marks it as existing, and its revoked nodes: read, written and
 * destroyed here only.
 */
export class GroupRecords {
  constructor(private readonly kv: KvStore) {}

  exists(token: string, g: string): Promise<boolean> {
    return this.kv.exists(kvPath.groupConfig(g), token);
  }

  async mustExist(token: string, g: string): Promise<void> {
    if (!(await this.exists(token, g))) throw groupNotFound(g);
  }

  /** Its config as stored: not checked yet (see storedRegInfo). */
  config(token: string, g: string): Promise<KvEntry<unknown> | null> {
    return this.kv.read<unknown>(kvPath.groupConfig(g), token);
  }

  /** Claims the name: a second claim, concurrent or not, is refused (409). */
  claim(token: string, g: string, info: GroupRegInfo): Promise<number> {
    return this.kv.writeAt(kvPath.groupConfig(g), info, token, 0, () => alreadyExists(`group '${g}'`));
  }

  /** Its config replaced, if the group exists (404 else). */
  replaceConfig(token: string, g: string, info: GroupRegInfo): Promise<unknown> {
    return this.kv.update<GroupRegInfo>(kvPath.groupConfig(g), token, (current) => {
      if (!current) throw groupNotFound(g);
      return info;
    });
  }

  /** Written whether or not it exists (a group taken over as it was). */
  writeConfig(token: string, g: string, info: unknown): Promise<number> {
    return this.kv.write(kvPath.groupConfig(g), info, token);
  }

  /** The group's last record to go: it no longer exists then. */
  destroyConfig(token: string, g: string): Promise<void> {
    return this.kv.destroy(kvPath.groupConfig(g), token);
  }

  revocation(token: string, g: string, n: string): Promise<KvEntry<RevokedNode> | null> {
    return this.kv.read<RevokedNode>(kvPath.groupRevokedNode(g, n), token);
  }

  isRevoked(token: string, g: string, n: string): Promise<boolean> {
    return this.kv.exists(kvPath.groupRevokedNode(g, n), token);
  }

  revoke(token: string, g: string, n: string): Promise<number> {
    return this.kv.write<RevokedNode>(kvPath.groupRevokedNode(g, n), { revokedAt: new Date().toISOString() }, token);
  }

  allowBack(token: string, g: string, n: string): Promise<void> {
    return this.kv.destroy(kvPath.groupRevokedNode(g, n), token);
  }

  async revokedIds(token: string, g: string): Promise<string[]> {
    return (await this.kv.list(kvPath.groupRevokedNodes(g), token)).filter(isName);
  }
}

import { isName } from '../names';
import { kvPath } from '../vault/layout';
import { KvEntry, KvStore, NO_CHANGE } from '../vault/stores';

/** The records rks keeps of a node in Vault. */

/** What rks keeps of an admitted node, at `rks/data/groups/<g>/nodes/<nodeId>`. */
export interface NodeRecord {
  registeredAt: string;
  /** Last registration or token renewal through rks. */
  seenAt: string;
}

/** The records of a group's admitted nodes: read, written and destroyed here only. */
export class NodeRecords {
  constructor(private readonly kv: KvStore) {}

  read(token: string, g: string, n: string): Promise<KvEntry<NodeRecord> | null> {
    return this.kv.read<NodeRecord>(kvPath.groupNode(g, n), token);
  }

  exists(token: string, g: string, n: string): Promise<boolean> {
    return this.kv.exists(kvPath.groupNode(g, n), token);
  }

  /** Admitted (again): first registered at `registeredAt` (now, when new), seen now. */
  admit(token: string, g: string, n: string, registeredAt?: string): Promise<number> {
    const now = new Date().toISOString();
    return this.kv.write<NodeRecord>(kvPath.groupNode(g, n), { registeredAt: registeredAt ?? now, seenAt: now }, token);
  }

  /** Seen at `at`, if it is still admitted. */
  async seen(token: string, g: string, n: string, at: Date): Promise<void> {
    await this.kv.update<NodeRecord>(kvPath.groupNode(g, n), token, (current) => (current ? { ...current, seenAt: at.toISOString() } : NO_CHANGE));
  }

  destroy(token: string, g: string, n: string): Promise<void> {
    return this.kv.destroy(kvPath.groupNode(g, n), token);
  }

  async ids(token: string, g: string): Promise<string[]> {
    return (await this.kv.list(kvPath.groupNodes(g), token)).filter(isName);
  }
}

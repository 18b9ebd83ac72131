import { GroupRecords } from '../records/groups';
import { NodeRecords } from '../records/nodes';
import { ManagedMaterial, SecretRecords } from '../records/secrets';
import type { KvStore } from '../vault/stores';
import { Catalog } from './catalog';
import { ChangeLog } from './changes';
import { Copies } from './copies';

/**
 * What rks keeps in Vault, each record with its one owner: the secret, a managed secret's
 * certificate and key, the groups' copies and their index, the catalog, a group's config and
 * revoked nodes, a node's record. Made once per process and handed to every service that reads
 * or writes them.
 */
export class Storage {
  readonly records: SecretRecords;
  readonly groups: GroupRecords;
  readonly nodes: NodeRecords;
  readonly material: ManagedMaterial;
  readonly copies: Copies;
  readonly catalog: Catalog;
  /** The groups' serials: one writer per process, so that changes coming together are written together. */
  readonly changes: ChangeLog;

  constructor(readonly kv: KvStore) {
    this.records = new SecretRecords(kv);
    this.groups = new GroupRecords(kv);
    this.nodes = new NodeRecords(kv);
    this.material = new ManagedMaterial(kv);
    this.changes = new ChangeLog(kv);
    this.copies = new Copies(kv, this.records, this.material, this.changes);
    this.catalog = new Catalog(kv, this.records, this.material, this.copies);
  }
}

/** The records rks keeps of a node in Vault. */

/** What rks keeps of an admitted node, at `rks/data/groups/<g>/nodes/<nodeId>`. */
export interface NodeRecord {
  registeredAt: string;
  /** Last registration or token renewal through rks. */
  seenAt: string;
}

import type { Logger } from 'pino';
import { VaultClient, isVaultError } from './client';
import { LAYOUT, kvPath } from './layout';
import type { ServiceSession } from './session';
import type { KvStore } from './stores';

/**
 * Whether Vault holds a newer layout than this rks knows, which means a newer rks ran init: an
 * instance left behind in a rolling upgrade then writes nothing of rks's (its KV, its policies;
 * 503 `layout_newer` to callers, its background work paused) and is not ready, so that it never
 * writes the old layout over what the newer one moved. Looked at when rks starts and every
 * INTERVAL after.
 */
export class LayoutWatch {
  static readonly INTERVAL_MS = 10_000;
  private newer?: number;
  private warned = false;

  constructor(
    private readonly vault: VaultClient,
    private readonly kv: KvStore,
    private readonly session: ServiceSession,
    private readonly logger: Logger,
  ) {}

  /** Why this rks may not write, if it may not: what readiness and refused callers are told. */
  get held(): string | undefined {
    return this.newer === undefined
      ? undefined
      : `Vault holds rks layout ${this.newer}, newer than this rks's (${LAYOUT}): a newer rks ran init; this instance writes nothing until it is replaced by the newer version`;
  }

  async check(): Promise<void> {
    let layout: number;
    try {
      layout = Number((await this.session.run((t) => this.kv.read<{ layout?: number }>(kvPath.config, t)))?.data.layout);
    } catch (err) {
      // Vault away, or not initialised: as it was. Refused: an identity from before this grant.
      if (isVaultError(err, 403) && !this.warned) {
        this.warned = true;
        this.logger.warn('rks cannot read the layout Vault holds (its identity predates that grant): run init again, or an instance left behind by an upgrade could write an older layout');
      }
      return;
    }
    const newer = Number.isSafeInteger(layout) && layout > LAYOUT ? layout : undefined;
    if (newer === this.newer) return;
    this.newer = newer;
    this.vault.holdWrites(this.held);
    if (newer !== undefined) this.logger.error({ layout: newer, known: LAYOUT }, this.held!);
    else this.logger.info({ layout: LAYOUT }, 'Vault holds the layout this rks knows: writing again');
  }

  /** `round`, run only while this rks may write (background work). */
  gate(round: () => Promise<unknown>): () => Promise<unknown> {
    return () => (this.newer === undefined ? round() : Promise.resolve());
  }
}

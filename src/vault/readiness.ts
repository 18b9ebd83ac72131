import type { Gauge } from 'prom-client';
import type { VaultClient, VaultStatus } from './client';
import type { LayoutWatch } from './layout-watch';
import type { ServiceSession } from './session';

export interface ReadinessReport {
  ready: boolean;
  /** Why not, for the operator reading /readyz. */
  reasons: string[];
  /** The same, naming no Vault address or node state: for whoever asks without a token. */
  publicReasons: string[];
  vault: VaultStatus;
}

/** How long one check's answer is reused: /readyz needs no token, so its cost on Vault is bounded. */
const REUSE_MS = 500;
const PROBE_TIMEOUT_MS = 800;

/**
 * Whether this rks can serve: a Vault node that answers as active (or, with one address, any
 * unsealed node behind it), its own Vault login, and the certificate it should serve.
 */
export class Readiness {
  private last?: { at: number; report: ReadinessReport };
  private pending?: Promise<ReadinessReport>;

  constructor(
    private readonly vault: VaultClient,
    private readonly session: ServiceSession,
    private readonly layout: Pick<LayoutWatch, 'held'>,
    private readonly gauge: Gauge,
    /** Says why the served certificate is not the one rks should serve, if it is not. */
    private readonly certificate: () => string | undefined,
  ) {}

  check(): Promise<ReadinessReport> {
    if (this.last && Date.now() - this.last.at < REUSE_MS) return Promise.resolve(this.last.report);
    this.pending ??= this.run().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async run(): Promise<ReadinessReport> {
    const reasons: string[] = [];
    const publicReasons: string[] = [];
    const vault = await this.vault.status(PROBE_TIMEOUT_MS);
    if (!vault.active) {
      reasons.push(`no active, unsealed vault node (${vault.nodes.map((n) => `${n.addr}: ${n.state}`).join(', ')})`);
      publicReasons.push('no active, unsealed vault node');
    } else {
      try {
        await this.session.token();
      } catch (err) {
        reasons.push((err as Error).message);
        publicReasons.push((err as Error).message);
      }
    }
    // An instance a newer rks left behind: its work goes to the upgraded ones.
    const held = this.layout.held;
    if (held) {
      reasons.push(held);
      publicReasons.push(held);
    }
    // Only an initialised rks (its login works) has a CA to serve a certificate from.
    const certificate = reasons.length === 0 ? this.certificate() : undefined;
    if (certificate) {
      reasons.push(certificate);
      publicReasons.push(certificate);
    }
    const report = { ready: reasons.length === 0, reasons, publicReasons, vault };
    this.gauge.set(report.ready ? 1 : 0);
    this.last = { at: Date.now(), report };
    return report;
  }
}

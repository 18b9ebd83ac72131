import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';
import { isVaultError } from '../vault/client';
import type { Session } from '../vault/stores';
import { RKS_CA, budgetOf, type AcmeIssuers } from '../acme/issuers';
import type { OrderPacing } from '../acme/pacing';
import { isName } from '../names';
import { CatalogEntry, RENEWAL_STATUSES, RenewalStatus, RenewalSummary, renewalStatus, type Catalog } from './catalog';
import type { CertificateFacts, ManagedSpec } from '../records/secrets';

export interface ExpiryGauges {
  /** One series per secret, for the soonest-expiring `seriesLimit` secrets. */
  expiry: Gauge<'fqdn'>;
  /** Secrets expiring within 7 and 30 days, and expired ones. */
  expiring: Gauge<'within'>;
  lastPass: Gauge;
  /** Managed secrets by renewal state. */
  managed: Gauge<'issuer' | 'state'>;
  /** Each ACME issuer's next slot and the end of its queue (seconds since the epoch). */
  acmeNextSlot: Gauge<'issuer'>;
  acmeQueueThrough: Gauge<'issuer'>;
}

/**
 * What the warnings keep of a managed secret between passes, as one number (a number a secret,
 * not an object: at 100,000 managed secrets that is a few MB): its renewal date and flags.
 */
type Watched = number;
const W = { issued: 1, scheduled: 2, failing: 4, queued: 8, inProgress: 16 };
const watched = (issued: boolean, r?: RenewalSummary): Watched =>
  (r ? r.renewAt : 0) * 32 + (issued ? W.issued : 0) + (r ? W.scheduled + (r.failures > 0 ? W.failing : 0) + (r.queued ? W.queued : 0) + (r.inProgress ? W.inProgress : 0) : 0);
const renewalOf = (w: Watched): Pick<RenewalSummary, 'renewAt' | 'failures' | 'queued' | 'inProgress'> | undefined =>
  w & W.scheduled ? { renewAt: Math.floor(w / 32), failures: w & W.failing ? 1 : 0, ...(w & W.queued ? { queued: true } : {}), ...(w & W.inProgress ? { inProgress: true } : {}) } : undefined;
/** Stand-ins for what renewalStatus only asks the presence of. */
const MANAGED = {} as ManagedSpec;
const ISSUED = {} as CertificateFacts;

/** A managed secret whose renewal is late this long past its date is warned about as any other. */
const LATE_SECONDS = 3600;

const DAY = 86400;

/**
 * Looks at every secret's expiry now and then (a read per catalog shard, whatever the number
 * of secrets), and follows this instance's own changes in between without reading Vault:
 * metrics for alerting, and one warning line per secret entering its last `warnDays` days
 * (again if it is replaced by one that expires as soon). A managed secret rks renews is not
 * warned about while its renewal is on time: only once it fails or is late.
 */
export class ExpiryWatch {
  private readonly warned = new Map<string, number>();
  /** Every certificate's end (seconds), as of the last pass and this instance's changes since. */
  private known?: Map<string, number>;
  /** Managed secrets' renewal, as of the last pass. */
  private renewals = new Map<string, Watched>();
  private publishing?: NodeJS.Timeout;
  private during?: Map<string, number | null>;

  constructor(
    private readonly catalog: Pick<Catalog, 'scan'>,
    private readonly session: Session,
    private readonly gauges: ExpiryGauges,
    private readonly logger: Logger,
    private readonly opts: { warnDays: number; seriesLimit: number },
    private readonly acme?: { issuers: Pick<AcmeIssuers, 'record'>; pacing: Pick<OrderPacing, 'view'> },
  ) {}

  async pass(now = Date.now()): Promise<void> {
    // A little of each entry, a shard at a time: at 100,000 secrets whole entries would not fit rks's heap.
    const all = new Map<string, number>();
    const renewals = new Map<string, Watched>();
    const counts = new Map<string, Map<RenewalStatus, number>>();
    const seen = (fqdn: string, e: CatalogEntry) => {
      if (e.info) all.set(fqdn, Math.floor(Date.parse(e.info.notAfter) / 1000));
      const status = renewalStatus(e, now);
      if (!status) return;
      renewals.set(fqdn, watched(Boolean(e.info), e.renewal));
      const issuer = isName(e.managed!.issuer) ? e.managed!.issuer : 'invalid';
      if (!counts.has(issuer)) counts.set(issuer, new Map(RENEWAL_STATUSES.map((s) => [s, 0])));
      counts.get(issuer)!.set(status, counts.get(issuer)!.get(status)! + 1);
    };
    // Changes noted while the catalog is read may be missing from what it answers: applied again.
    const during = new Map<string, number | null>();
    this.during = during;
    try {
      await this.session.run((token) => this.catalog.scan(token, seen));
    } catch (err) {
      const hint = isVaultError(err, 403) ? ' (rks was upgraded: run init again with the root token to let it read the catalog)' : '';
      this.logger.warn({ err: (err as Error).message }, `certificate expiry check failed; will retry${hint}`);
      return;
    } finally {
      this.during = undefined;
    }
    this.gauges.managed.reset();
    for (const [issuer, byState] of counts) for (const [state, n] of byState) this.gauges.managed.set({ issuer, state }, n);
    await this.paces([...counts.keys()].filter((i) => i !== RKS_CA && i !== 'invalid'), now);
    this.renewals = renewals;
    for (const [fqdn, at] of during) {
      if (at === null) all.delete(fqdn);
      else all.set(fqdn, at);
    }
    this.known = all;
    this.publish(now);
  }

  /** A certificate this instance stored (or deleted: null): in the metrics within a second, without a pass. */
  note(fqdn: string, notAfter: string | null): void {
    const at = notAfter === null ? null : Math.floor(Date.parse(notAfter) / 1000);
    this.during?.set(fqdn, at);
    if (!this.known) return; // the first pass will see it
    if (at === null) this.known.delete(fqdn);
    else this.known.set(fqdn, at);
    this.publishing ??= setTimeout(() => {
      this.publishing = undefined;
      this.publish(Date.now());
    }, 1000).unref();
  }

  /** Once a second at most while certificates change: one look at each, no sort of them all. */
  private publish(now: number): void {
    const t = now / 1000;
    const counts = { expired: 0, '7d': 0, '30d': 0 };
    const soon: [string, number][] = [];
    for (const [fqdn, at] of this.known!) {
      if (at <= t) counts.expired++;
      if (at - t <= 7 * DAY) counts['7d']++;
      if (at - t <= 30 * DAY) counts['30d']++;
      if (at - t <= this.opts.warnDays * DAY && this.warrants(fqdn, t)) soon.push([fqdn, at]);
    }
    for (const [within, n] of Object.entries(counts)) this.gauges.expiring.set({ within }, n);
    this.gauges.expiry.reset();
    if (this.opts.seriesLimit > 0) {
      const first = [...this.known!.entries()].sort((a, b) => a[1] - b[1]).slice(0, this.opts.seriesLimit);
      for (const [fqdn, at] of first) this.gauges.expiry.set({ fqdn }, at);
    }
    this.gauges.lastPass.set(Math.floor(t));

    soon.sort((a, b) => a[1] - b[1]);
    for (const [fqdn, at] of soon) {
      if (this.warned.get(fqdn) === at) continue;
      this.warned.set(fqdn, at);
      const notAfter = new Date(at * 1000).toISOString();
      if (at <= t) this.logger.warn({ fqdn, notAfter }, 'certificate has expired: nodes get 410 for it until a new one is pushed');
      else this.logger.warn({ fqdn, notAfter, daysLeft: Math.floor((at - t) / DAY) }, 'certificate expires soon');
    }
    const warnedNow = new Set(soon.map(([fqdn]) => fqdn));
    for (const fqdn of this.warned.keys()) if (!warnedNow.has(fqdn)) this.warned.delete(fqdn);
  }

  /** Each ACME issuer's pace: when its next order may go, when its queue is through. */
  private async paces(issuers: string[], now: number): Promise<void> {
    if (!this.acme) return;
    this.gauges.acmeNextSlot.reset();
    this.gauges.acmeQueueThrough.reset();
    const t = Math.floor(now / 1000);
    for (const issuer of issuers) {
      try {
        const view = await this.session.run(async (token) => this.acme!.pacing.view(token, issuer, budgetOf(await this.acme!.issuers.record(token, issuer)), t));
        this.gauges.acmeNextSlot.set({ issuer }, Math.floor(Date.parse(view.nextSlot) / 1000));
        this.gauges.acmeQueueThrough.set({ issuer }, view.queueThrough ? Math.floor(Date.parse(view.queueThrough) / 1000) : t);
      } catch {
        // An issuer deleted meanwhile, or Vault briefly away: the next pass says it again.
      }
    }
  }

  /** A pushed secret near its end; a managed one only when its renewal fails or is late. */
  private warrants(fqdn: string, t: number): boolean {
    const managed = this.renewals.get(fqdn);
    if (managed === undefined) return true;
    const renewal = renewalOf(managed);
    const status = renewalStatus({ managed: MANAGED, info: managed & W.issued ? ISSUED : undefined, renewal }, t * 1000);
    return status === 'failing' || (status === 'due' && renewal!.renewAt < t - LATE_SECONDS);
  }

  stop(): void {
    clearTimeout(this.publishing);
  }
}

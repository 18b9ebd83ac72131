import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';
import { isDenied } from '../vault/client';
import type { Session } from '../vault/stores';
import { budgetOf, type AcmeIssuers } from '../acme/issuers';
import type { OrderPacing } from '../acme/pacing';
import { isName } from '../names';
import { RKS_CA } from '../records/secrets';
import { RENEWAL_STATUSES, RenewalStatus } from '../secrets/catalog';
import type { Listing, Listings } from '../secrets/listing';
import type { ExpiryNotes } from '../secrets/service';

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

/** A managed secret whose renewal is late this long past its date is warned about as any other. */
const LATE_SECONDS = 3600;

const DAY = 86400;

/** This instance's own change of a certificate since the listing: its end (null: deleted), and whether rks renews it. */
interface Noted {
  at: number | null;
  managed: boolean;
}

/**
 * Looks at every secret's expiry now and then, from the catalog's listing in memory (the one the
 * inventory pages from, read again only when the catalog changed; it keeps no copy of its own),
 * and follows this instance's
 * own changes in between without reading Vault: metrics for alerting, and one warning line per
 * secret entering its last `warnDays` days (again if it is replaced by one that expires as
 * soon). A managed secret rks renews is not warned about while its renewal is on time: only once
 * it fails or is late.
 */
export class ExpiryWatch implements ExpiryNotes {
  private readonly warned = new Map<string, number>();
  /** Whether a pass ended, and this instance's changes since its listing was read. */
  private passed = false;
  private noted = new Map<string, Noted>();
  private publishing?: NodeJS.Timeout;
  private during?: Map<string, Noted>;

  constructor(
    private readonly listings: Pick<Listings, 'current' | 'last'>,
    private readonly session: Session,
    private readonly gauges: ExpiryGauges,
    private readonly logger: Logger,
    private readonly opts: { warnDays: number; seriesLimit: number },
    private readonly acme?: { issuers: Pick<AcmeIssuers, 'record'>; pacing: Pick<OrderPacing, 'view'> },
  ) {}

  async pass(now = Date.now()): Promise<void> {
    // Changes noted while the catalog is read may be missing from what it answers: applied again.
    const during = new Map<string, Noted>();
    this.during = during;
    let listing: Listing;
    try {
      listing = await this.session.run((token) => this.listings.current(token));
      while (listing.released) listing = await this.session.run((token) => this.listings.current(token));
    } catch (err) {
      const hint = isDenied(err) ? ' (rks was upgraded: run init again with the root token to let it read the catalog)' : '';
      this.logger.warn({ err: (err as Error).message }, `certificate expiry check failed; will retry${hint}`);
      return;
    } finally {
      this.during = undefined;
    }
    const counts = new Map<string, Map<RenewalStatus, number>>();
    for (let i = 0; i < listing.size; i++) {
      const spec = listing.issuer(i);
      if (spec === undefined) continue;
      const issuer = isName(spec) ? spec : 'invalid';
      if (!counts.has(issuer)) counts.set(issuer, new Map(RENEWAL_STATUSES.map((s) => [s, 0])));
      const byState = counts.get(issuer)!;
      const status = listing.status(i, now)!;
      byState.set(status, byState.get(status)! + 1);
    }
    this.gauges.managed.reset();
    for (const [issuer, byState] of counts) for (const [state, n] of byState) this.gauges.managed.set({ issuer, state }, n);
    this.passed = true;
    this.noted = during;
    // Before anything is awaited: a listing read again meanwhile empties this one (Listing.release).
    this.publish(now, listing);
    await this.paces([...counts.keys()].filter((i) => i !== RKS_CA && i !== 'invalid'), now);
  }

  /**
   * A certificate this instance stored (or deleted: null), `managed` when rks renews it: in the
   * metrics within a second, without a pass.
   */
  note(fqdn: string, notAfter: string | null, managed = false): void {
    const noted = { at: notAfter === null ? null : Math.floor(Date.parse(notAfter) / 1000), managed };
    this.during?.set(fqdn, noted);
    if (!this.passed) return; // the first pass will see it
    this.noted.set(fqdn, noted);
    this.publishing ??= setTimeout(() => {
      this.publishing = undefined;
      // The listing in memory now (none while a newer one is read: the next note or pass publishes).
      const listing = this.listings.last();
      if (listing) this.publish(Date.now(), listing);
    }, 1000).unref();
  }

  /** Once a second at most while certificates change: one look at each, no sort of them all. */
  private publish(now: number, listing: Listing): void {
    const t = now / 1000;
    const counts = { expired: 0, '7d': 0, '30d': 0 };
    const soon: [string, number][] = [];
    const series: [string, number][] = [];
    const look = (fqdn: string, at: number, warrants: () => boolean) => {
      if (at <= t) counts.expired++;
      if (at - t <= 7 * DAY) counts['7d']++;
      if (at - t <= 30 * DAY) counts['30d']++;
      if (at - t <= this.opts.warnDays * DAY && warrants()) soon.push([fqdn, at]);
      if (this.opts.seriesLimit > 0) {
        series.push([fqdn, at]);
        // The soonest are kept as it goes: memory bounded by the limit, not by the secrets.
        if (series.length >= 2 * this.opts.seriesLimit) soonest(series, this.opts.seriesLimit);
      }
    };
    for (let i = 0; i < listing.size; i++) {
      const fqdn = listing.name(i);
      if (this.noted.has(fqdn)) continue;
      const at = Math.floor(listing.notAfter(i) / 1000);
      if (Number.isFinite(at)) look(fqdn, at, () => this.warrants(listing, i, t));
    }
    // Changed by this instance since: a managed secret it just renewed or made is on time.
    for (const [fqdn, noted] of this.noted) if (noted.at !== null) look(fqdn, noted.at, () => !noted.managed);
    for (const [within, n] of Object.entries(counts)) this.gauges.expiring.set({ within }, n);
    this.gauges.expiry.reset();
    for (const [fqdn, at] of soonest(series, this.opts.seriesLimit)) this.gauges.expiry.set({ fqdn }, at);
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

  /** A pushed secret near its end; a managed one only when its renewal fails or is late. */
  private warrants(listing: Listing, i: number, t: number): boolean {
    const status = listing.status(i, t * 1000);
    if (status === undefined) return true;
    return status === 'failing' || (status === 'due' && listing.renewAt(i) < t - LATE_SECONDS);
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

  stop(): void {
    clearTimeout(this.publishing);
  }
}

/** The `limit` soonest of `series`, in place (sorted by time). */
function soonest(series: [string, number][], limit: number): [string, number][] {
  series.sort((a, b) => a[1] - b[1]);
  series.length = Math.min(series.length, limit);
  return series;
}

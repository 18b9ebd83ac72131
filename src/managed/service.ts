import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { RenewalWindow, pickInWindow } from '../acme/ari';
import { AcmeRetryLater } from '../acme/client';
import { AcmeIssuers, budgetOf } from '../acme/issuers';
import { OrderPacing, OrderQueued } from '../acme/pacing';
import type { ChallengeBoard } from '../acme/challenges';
import type { AcmeOrders } from '../acme/orders';
import { mapLimited } from '../concurrency';
import { BadRequest, NotFound } from '../errors';
import { parseFqdn, quoted } from '../names';
import { KeyAndCsr, newKeyAndCsr } from '../pki/csr';
import { kvPath, managedRoleName } from '../vault/layout';
import { CasMismatch, CertificateAuthority, KvEntry, KvStore, Session } from '../vault/stores';
import type { Copies } from '../secrets/copies';
import type { Catalog, CatalogEntry } from '../secrets/catalog';
import type { Storage } from '../secrets/storage';
import { certificateFacts } from '../secrets/facts';
import type { ExpiryNotes } from '../secrets/service';
import { DueMark, RenewalSchedule, wakeAt } from './schedule';
import { validateTlsMaterial } from '../secrets/tls';
import { RKS_CA, isManagedStub, ManagedKeyType, ManagedMaterial, SecretRecords, ManagedSpec, ManagedSpecRecord, ManagedStub, RenewalState, SecretData, StoredSecret } from '../records/secrets';



export interface ManagedInput {
  issuer?: string;
  sans?: string[];
  keyType?: ManagedKeyType;
  lifetime?: number;
  renewBefore?: number;
  ttl?: number;
}

export const MANAGED_DEFAULTS = { lifetime: 86400, keyType: 'ec-p256' as ManagedKeyType };
/** An rks renewing a secret holds it this long; another instance takes over after. */
const CLAIM_SECONDS = 300;
/**
 * Waits after failures: a CA's failed validations count against rate limits, so ACME backs off
 * longer (5, 10, 20, 40 minutes: at most four failures of a name in any hour; Let's Encrypt
 * allows five).
 */
const RETRY_SECONDS = { ca: { min: 30, max: 3600 }, acme: { min: 300, max: 6 * 3600 } };
/** Renewals one instance runs at once in a pass (each one key, one signature or order, a few writes). */
const RENEW_CONCURRENCY = 8;

/** What managed secrets work with besides Vault's stores and rks's session. */
export interface ManagedParts {
  counters: { renewals: { inc(labels: { issuer: string; result: string }): void } };
  acme: { issuers: AcmeIssuers; orders: AcmeOrders; challenges: ChallengeBoard; pacing: OrderPacing };
  /** Told after a certificate's expiry changed. */
  expiry: ExpiryNotes;
  /** A secret was scheduled for now: a renewal pass runs at once. */
  wake: () => void;
}

/**
 * Secrets rks obtains from its own CA (Vault's PKI engine) or an ACME CA and renews before they
 * expire. The key is made in rks and stored only in Vault. What rks keeps of each is its own few
 * entries (the administrator's stub at `<fqdn>`, its certificates, its state, its mark in the
 * schedule), so nothing is rewritten per managed secret when another is added. Any number of rks
 * instances may run the renewal: an instance claims a due secret with check-and-set on its state
 * before it asks for a certificate, and writes the new version on the version it read, so a
 * secret is renewed once; a claim runs out, so a secret an instance dropped is taken over.
 */
export class ManagedSecrets {
  private readonly kv: KvStore;
  private readonly records: SecretRecords;
  private readonly material: ManagedMaterial;
  private readonly catalog: Catalog;
  private readonly copies: Copies;
  readonly schedule: RenewalSchedule;
  /** The orders the running pass queued, by issuer (for the one line it logs). */
  private queuedInPass = new Map<string, { count: number; last: number }>();

  private readonly counters: ManagedParts['counters'];
  private readonly acme: ManagedParts['acme'];
  private readonly expiry: ExpiryNotes;
  private readonly wake: () => void;

  constructor(
    storage: Storage,
    private readonly pki: CertificateAuthority,
    private readonly session: Session,
    private readonly logger: Logger,
    parts: ManagedParts,
  ) {
    ({ kv: this.kv, records: this.records, material: this.material, catalog: this.catalog, copies: this.copies } = storage);
    ({ counters: this.counters, acme: this.acme, expiry: this.expiry, wake: this.wake } = parts);
    this.schedule = new RenewalSchedule(this.kv);
  }

  /**
   * Creates a managed secret with the caller's (admin) token. From rks's CA: its PKI role and
   * its first certificate, at once ('issued'). From an ACME CA: scheduled, and obtained in the
   * background, where the edges answer the CA's challenges ('pending').
   */
  async create(token: string, name: string, input: ManagedInput): Promise<{ state: 'issued' | 'pending'; entry: CatalogEntry | null }> {
    const fqdn = parseFqdn(name);
    const spec = this.spec(fqdn, input);
    if (spec.issuer !== RKS_CA) return { state: 'pending', entry: await this.createPending(token, fqdn, spec, input.ttl) };
    // The key is made while the name is taken.
    const key = keyAndCsr(spec);
    key.catch(() => undefined);
    // Claimed by this call while it obtains the first certificate: should it fail, or this rks
    // stop, the renewal pass takes it over when the claim runs out. Writes that do not depend on
    // each other go together (Vault's storage applies them as one batch).
    const t = now();
    const claim: RenewalState = { renewAt: t + CLAIM_SECONDS, failures: 0, inProgress: true, claim: randomUUID(), lastAttempt: new Date(t * 1000).toISOString(), pending: true };
    await this.writeStub(token, fqdn, spec, input.ttl, [() => this.pki.writeNamesRole(managedRoleName(roleId(fqdn)), spec.sans, spec.lifetime!, token), () => this.schedule.mark(token, fqdn, claim)]);
    const claimed = await this.schedule.put(token, fqdn, claim, null, { marked: true });
    const { data } = await this.issue(fqdn, spec, input.ttl, token, undefined, key);
    const issued: RenewalState = { renewAt: renewAt(data, spec), failures: 0, lastAttempt: claim.lastAttempt };
    await Promise.all([this.material.write(token, fqdn, data), this.schedule.mark(token, fqdn, issued)]);
    this.counters.renewals.inc({ issuer: RKS_CA, result: 'renewed' });
    let unmarked: Promise<void> = Promise.resolve();
    await this.schedule.put(token, fqdn, issued, claimed, { marked: true, unmarked: (p) => (unmarked = p.catch(() => undefined)) }).catch(() => undefined);
    const entry = await this.catalog.refresh(token, fqdn).catch(() => this.catalog.refresh(token, fqdn)).catch(() => null);
    await unmarked;
    this.expiry.note(fqdn, data.info!.notAfter, true);
    return { state: 'issued', entry };
  }

  /**
   * The name, taken for a managed secret: what the administrator asked for (a push over it
   * replaces this), and the spec rks's identity renews to. Once the name is taken (only the
   * call whose stub lands goes on), whatever an earlier secret of that name left behind goes: a
   * new secret starts from nothing. `beside`: writes made with the spec's, once the name is taken.
   */
  private async writeStub(token: string, fqdn: string, spec: ManagedSpec, ttl: number | undefined, beside: (() => Promise<void>)[] = []): Promise<void> {
    const stub: ManagedStub = { managed: spec, ...(ttl ? { meta: { ttl } } : {}) };
    // Read beside the stub's write, used only once it landed.
    const left = this.leftovers(token, fqdn);
    left.catch(() => undefined);
    await this.records.create(token, fqdn, stub);
    await this.forget(token, fqdn, left);
    await Promise.all([this.kv.write<ManagedSpecRecord>(kvPath.managedSpec(fqdn), { spec, ...(ttl ? { ttl } : {}) }, token), ...beside.map((w) => w())]);
  }

  private async createPending(token: string, fqdn: string, spec: ManagedSpec, ttl: number | undefined): Promise<CatalogEntry | null> {
    // Before a slot of the issuer's budget is taken for it.
    await this.records.mustBeFree(token, fqdn);
    const issuer = await this.acme.issuers.get(token, spec.issuer).catch((err) => {
      throw err instanceof NotFound ? new BadRequest(`issuer '${spec.issuer}' not found`) : err;
    });
    if (issuer.status !== 'valid') throw new BadRequest(`issuer '${spec.issuer}' is deactivated`);
    if (spec.sans.some((n) => n.startsWith('*.'))) throw new BadRequest('an ACME CA validates wildcard names by DNS-01, which rks does not answer; use plain names');
    if (spec.lifetime !== undefined) throw new BadRequest('an ACME CA decides the lifetime of its certificates: leave lifetime out');
    // Behind the orders already waiting for the issuer's budget, if any: its slot is known now.
    const t = now();
    const budget = budgetOf(await this.acme.issuers.record(token, spec.issuer));
    const view = await this.acme.pacing.view(token, spec.issuer, budget, t);
    const backlog = Date.parse(view.nextSlot) > t * 1000 || view.queueThrough !== undefined;
    const at = backlog ? await this.acme.pacing.queue(token, spec.issuer, budget, t) : t;
    await this.writeStub(token, fqdn, spec, ttl);
    await this.schedule.put(token, fqdn, { renewAt: at, failures: 0, ...(backlog ? { queued: true as const } : {}), pending: true }, null);
    const entry = await this.catalog.refresh(token, fqdn).catch(() => null);
    this.wake();
    return entry;
  }

  /**
   * The secret is deleted, or a new one of its name made (with the admin's token): its spec
   * first (rks's identity renews nothing without it), then its state and mark, its certificates.
   */
  async forget(token: string, fqdn: string, left = this.leftovers(token, fqdn)): Promise<void> {
    const [spec, material, state] = await left;
    if (spec) await this.kv.destroy(kvPath.managedSpec(fqdn), token);
    await this.schedule.remove(token, fqdn, state);
    if (material) await this.material.destroy(token, fqdn);
  }

  /** What is left of a managed secret of that name, read before destroying (each destroy is a write Vault's storage applies): most names have nothing left. */
  private leftovers(token: string, fqdn: string) {
    return Promise.all([this.kv.version(kvPath.managedSpec(fqdn), token), this.material.version(token, fqdn), this.schedule.read(token, fqdn)]);
  }

  /**
   * After a rollback or a push over a managed secret (with the admin's token): renewed from what
   * is stored now, or no longer.
   */
  async reschedule(token: string, fqdn: string, head: StoredSecret | null): Promise<void> {
    if (!head || !isManagedStub(head)) {
      // Its certificates stay, for a rollback to the managed secret.
      await this.kv.destroy(kvPath.managedSpec(fqdn), token);
      await this.schedule.remove(token, fqdn);
    } else {
      const ttl = head.meta?.ttl;
      await this.kv.write<ManagedSpecRecord>(kvPath.managedSpec(fqdn), { spec: head.managed, ...(ttl ? { ttl } : {}) }, token);
      const [material, seen] = await Promise.all([this.material.read(token, fqdn), this.schedule.read(token, fqdn)]);
      const next: RenewalState = material?.data.info ? { renewAt: renewAt(material.data, head.managed), failures: 0 } : { renewAt: now(), failures: 0, pending: true };
      await this.schedule.put(token, fqdn, next, seen);
    }
    // After any renewal that ran meanwhile told the catalog what it saw.
    await this.catalog.refresh(token, fqdn).catch(() => undefined);
  }

  /** One pass: renews every managed secret that is due, with rks's own session, a few at once. */
  async renewDue(at = Date.now()): Promise<void> {
    const t = Math.floor(at / 1000);
    let due: DueMark[];
    try {
      due = await this.session.run((token) => this.schedule.due(token, t));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'managed secrets: cannot read the schedule; will retry');
      return;
    }
    const queued = new Map<string, { count: number; last: number }>();
    this.queuedInPass = queued;
    await mapLimited(due, RENEW_CONCURRENCY, (mark) =>
      this.session.run((token) => this.renew(token, mark.fqdn, t, mark)).catch((err) => {
        this.logger.warn({ fqdn: mark.fqdn, err: (err as Error).message }, 'managed secret: renewal attempt stopped; will retry');
      }),
    );
    // Said when the queue is built, with how long it runs: 100,000 names at 300 orders per 3 hours take 6 weeks.
    for (const [issuer, q] of queued) {
      this.logger.warn(
        { issuer, queued: q.count, queueThrough: new Date(q.last * 1000).toISOString() },
        `ACME issuer '${issuer}': ${q.count} order(s) wait for a slot of its order budget; the queue runs until ${new Date(q.last * 1000).toISOString()} (rks acme status ${issuer})`,
      );
    }
    await this.session.run((token) => this.acme.challenges.sweep(token, at)).catch(() => undefined);
  }

  /** Renews `fqdn` if it is due at `t` (its window looked at again, if that is due); `mark`: what the schedule's index said. */
  private async renew(token: string, fqdn: string, t: number, mark?: DueMark): Promise<void> {
    const seen = await this.schedule.read(token, fqdn);
    if (mark && (!seen || wakeAt(seen.data) !== mark.at)) {
      // Left behind by a state that moved on (its own mark stands) or was removed.
      await this.schedule.unmark(token, mark);
      if (!seen || wakeAt(seen.data) > t) return;
    }
    if (!seen) return;
    if (seen.data.renewAt > t) {
      if (!seen.data.inProgress && seen.data.ariAt !== undefined && seen.data.ariAt <= t) await this.recheckWindow(token, fqdn, t, seen);
      return;
    }
    // Claim it: of several rks instances, the one whose write lands renews it.
    const claimed: RenewalState = { ...seen.data, renewAt: t + CLAIM_SECONDS, lastAttempt: new Date(t * 1000).toISOString(), inProgress: true, claim: randomUUID() };
    try {
      await this.schedule.put(token, fqdn, claimed, seen);
    } catch (err) {
      if (err instanceof CasMismatch) return; // another instance changed it first: it has it
      throw err;
    }
    await this.attempt(token, fqdn, t, claimed);
    await this.catalog.refresh(token, fqdn, 'managed').catch(() => this.catalog.refresh(token, fqdn, 'managed')).catch((err) => {
      this.logger.warn({ fqdn, err: (err as Error).message }, 'managed secret: the inventory could not be told of its renewal');
    });
  }

  private async attempt(token: string, fqdn: string, t: number, claimed: RenewalState): Promise<void> {
    let spec: ManagedSpec | undefined;
    let next: SecretData | null;
    /** `stored`: the new certificate is in Vault, and what fails after it is the copies' business alone. */
    const progress: { stored: boolean; window?: RenewalWindow } = { stored: false };
    // Whatever fails from here is recorded (lastError, the failed counter): a managed secret is
    // either renewing or visibly failing, never silently stuck.
    try {
      const [current, asked] = await Promise.all([
        this.material.read(token, fqdn),
        this.kv.read<ManagedSpecRecord>(kvPath.managedSpec(fqdn), token),
      ]);
      // What an administrator asked for, from the record only their calls write: nothing else rks's identity may write decides what is ordered.
      spec = asked?.data.spec;
      if (!spec) {
        this.logger.info({ fqdn }, 'managed secret: no longer managed (pushed over or deleted); its schedule goes');
        await this.schedule.remove(token, fqdn);
        return;
      }
      // Copies only, unless what is stored is itself due (the copies kept failing that long).
      if (claimed.copiesBehind && current?.data.info && renewAt(current.data, spec) > t) {
        next = current.data;
        await this.copies.fanOut(token, fqdn, 'managed');
      } else {
        next = await this.renewNow(token, fqdn, t, claimed, { spec, ttl: asked!.data.ttl, current }, progress);
        if (!next) return;
      }
    } catch (err) {
      if (err instanceof OrderQueued) return this.queued(token, fqdn, claimed, spec!.issuer, err);
      await this.failed(token, fqdn, t, claimed, err, { spec, ...progress });
      return;
    }
    // Renewed and copied. The state is tried twice (else the claim runs out and it is renewed early).
    const { window } = progress;
    const state: RenewalState = {
      renewAt: renewAt(next, spec, window),
      failures: 0,
      lastAttempt: claimed.lastAttempt,
      ...(window ? { ariAt: t + window.recheckIn } : claimed.ariAt !== undefined ? { ariAt: claimed.ariAt } : {}),
    };
    await this.setState(token, fqdn, state, claimed.claim).catch(() => this.setState(token, fqdn, state, claimed.claim)).catch((err) => {
      this.logger.warn({ fqdn, err: (err as Error).message }, 'managed secret renewed, but its next date could not be recorded');
    });
  }

  /**
   * A new certificate ordered (within the issuer's budget), stored, and copied to the groups;
   * null when it is not written after all (the claim ran out, or the secret was deleted).
   */
  private async renewNow(
    token: string,
    fqdn: string,
    t: number,
    claimed: RenewalState,
    asked: { spec: ManagedSpec; ttl?: number; current: KvEntry<SecretData> | null },
    progress: { stored: boolean; window?: RenewalWindow },
  ): Promise<SecretData | null> {
    const { spec, ttl, current } = asked;
    if (spec.issuer !== RKS_CA) await this.slot(token, spec.issuer, t, current?.data.info, claimed);
    const { data: next, window } = await this.issue(fqdn, spec, ttl, token, current?.data.certificate);
    progress.window = window;
    // An order can outlive its claim: another instance took the secret over, or an admin
    // deleted it meanwhile. Then this certificate is not written.
    if (!(await this.holds(token, fqdn, claimed.claim!))) {
      this.logger.info({ fqdn }, 'managed secret: the claim ran out during the order; another attempt or a deletion took over, this certificate is dropped');
      return null;
    }
    await this.material.write(token, fqdn, next, current?.version ?? 0);
    // Deleted as it was written (the spec goes first): its key does not outlive the deletion.
    if (!(await this.kv.read(kvPath.managedSpec(fqdn), token))) {
      await this.material.destroy(token, fqdn);
      return null;
    }
    progress.stored = true;
    // The groups' copies first (what nodes read), beside the state that they may lag: should
    // rks stop now, the next attempt copies and orders nothing.
    const { pending: _pending, ...held } = claimed;
    const [, copied] = await Promise.allSettled([this.setState(token, fqdn, { ...held, copiesBehind: true }, claimed.claim), this.copies.fanOut(token, fqdn, 'managed')]);
    this.counters.renewals.inc({ issuer: spec.issuer, result: 'renewed' });
    this.logger.info({ fqdn, notAfter: next.info!.notAfter }, 'managed secret renewed');
    this.expiry.note(fqdn, next.info!.notAfter, true);
    if (copied.status === 'rejected') throw copied.reason;
    return next;
  }

  /** Waiting its turn in the issuer's queue is no failure: the state says when, and keeps what it said before. */
  private async queued(token: string, fqdn: string, claimed: RenewalState, issuer: string, err: OrderQueued): Promise<void> {
    const { inProgress: _i, claim: _c, ...held } = claimed;
    await this.setState(token, fqdn, { ...held, renewAt: err.at, queued: true }, claimed.claim).catch(() => undefined);
    const q = this.queuedInPass.get(issuer) ?? { count: 0, last: 0 };
    this.queuedInPass.set(issuer, { count: q.count + 1, last: Math.max(q.last, err.at) });
  }

  /**
   * A slot of the issuer's order budget for this order, or OrderQueued with its place in the
   * queue: a renewal whose certificate is in its last third (or an order that already waited its
   * turn) goes to the front, anything else to the end.
   */
  private async slot(token: string, issuer: string, t: number, info: SecretData['info'], claimed: RenewalState): Promise<void> {
    const pacing = this.acme.pacing;
    const budget = budgetOf(await this.acme.issuers.record(token, issuer));
    const wait = await pacing.take(token, issuer, budget, t);
    if (!wait) return;
    const [from, to] = info ? [Date.parse(info.notBefore) / 1000, Date.parse(info.notAfter) / 1000] : [0, 0];
    const nearEnd = info !== undefined && to - t < (to - from) / 3;
    throw new OrderQueued(await pacing.queue(token, issuer, budget, t, nearEnd || Boolean(claimed.queued)));
  }

  /**
   * An attempt that failed, recorded: when it is tried again (backing off, or when the CA said),
   * why, and whether what is left is the copies alone (the certificate is stored).
   */
  private async failed(
    token: string,
    fqdn: string,
    t: number,
    claimed: RenewalState,
    err: unknown,
    { spec, stored, window }: { spec?: ManagedSpec; stored: boolean; window?: RenewalWindow },
  ): Promise<void> {
    if (err instanceof AcmeRetryLater && spec && spec.issuer !== RKS_CA) {
      // The CA's own words for the account: no instance orders from it before then.
      await this.acme.pacing.pause(token, spec.issuer, t + err.retryAfter, (err as Error).message).catch(() => undefined);
    }
    const failures = claimed.failures + 1;
    const issuer = spec?.issuer ?? RKS_CA;
    const retry = issuer === RKS_CA || stored || claimed.copiesBehind ? RETRY_SECONDS.ca : RETRY_SECONDS.acme;
    const backoff = Math.min(retry.min * 2 ** (failures - 1), retry.max);
    const wait = err instanceof AcmeRetryLater ? Math.max(backoff, err.retryAfter) : backoff;
    const message = err instanceof CasMismatch ? 'the secret changed during the renewal' : (err as Error).message;
    const { pending } = claimed; // kept; `inProgress` is not
    // Stored, but not every copy follows: the next attempt is about the copies alone.
    const behind = stored || Boolean(claimed.copiesBehind);
    // The renewal window of the certificate stored (ACME) is kept for when the copies are done.
    const ariAt = window ? t + window.recheckIn : claimed.ariAt;
    const state: RenewalState = {
      renewAt: t + wait,
      failures,
      lastAttempt: claimed.lastAttempt,
      lastError: behind ? `the groups' copies were not updated: ${message}` : message,
      ...(pending && !stored ? { pending } : {}),
      ...(behind ? { copiesBehind: true as const, ...(ariAt !== undefined ? { ariAt } : {}) } : {}),
    };
    await this.setState(token, fqdn, state, claimed.claim).catch(() => undefined);
    if (behind) {
      this.counters.renewals.inc({ issuer, result: 'copies_failed' });
      this.logger.warn({ fqdn, err: message, retryInSeconds: wait }, "managed secret: its groups' copies were not updated; will update them (and order nothing)");
      return;
    }
    this.counters.renewals.inc({ issuer, result: 'failed' });
    this.logger.warn({ fqdn, err: message, retryInSeconds: wait }, 'managed secret renewal failed; will retry');
  }

  /**
   * Asks the ACME CA again for a certificate's renewal window (RFC 9773: a CA moves it earlier
   * when it must revoke) and moves the renewal into it when it is outside.
   */
  private async recheckWindow(token: string, fqdn: string, t: number, seen: KvEntry<RenewalState>): Promise<void> {
    const current = await this.material.read(token, fqdn);
    const spec = current?.data.managed;
    let window: RenewalWindow | undefined;
    if (spec && spec.issuer !== RKS_CA && spec.renewBefore === undefined) {
      window = await this.acme.orders.window(token, spec.issuer, current.data.certificate).catch(() => undefined);
    }
    const state = seen.data;
    const inside = window && state.renewAt >= window.start && state.renewAt <= window.end;
    const moved = current && spec && window && !inside ? Math.max(t, renewAt(current.data, spec, window)) : undefined;
    await this.schedule.put(token, fqdn, { ...state, ariAt: t + (window?.recheckIn ?? 3600), ...(moved !== undefined ? { renewAt: moved } : {}) }, seen).catch((err) => {
      if (!(err instanceof CasMismatch)) throw err;
    });
    if (moved !== undefined) this.logger.info({ fqdn, renewAt: new Date(moved * 1000).toISOString() }, 'the CA moved the renewal window; renewal rescheduled');
  }

  /** Records an attempt's outcome, if the state is still there and (with `claim`) still that attempt's. */
  private async setState(token: string, fqdn: string, state: RenewalState, claim?: string): Promise<void> {
    for (let round = 0; ; round++) {
      const seen = await this.schedule.read(token, fqdn);
      if (!seen || (claim !== undefined && seen.data.claim !== claim)) return;
      try {
        await this.schedule.put(token, fqdn, state, seen);
        return;
      } catch (err) {
        if (!(err instanceof CasMismatch) || round === 2) throw err;
      }
    }
  }

  private async holds(token: string, fqdn: string, claim: string): Promise<boolean> {
    return (await this.schedule.read(token, fqdn))?.data.claim === claim;
  }

  /** A fresh key (made here) and a certificate for it: from the secret's own PKI role, or an ACME order. */
  private async issue(
    fqdn: string,
    spec: ManagedSpec,
    ttl: number | undefined,
    token: string,
    replacing?: string,
    key = keyAndCsr(spec),
  ): Promise<{ data: SecretData; window?: RenewalWindow }> {
    const names = spec.sans;
    const { keyPem, csrPem } = await key;
    let chain: string;
    let window: RenewalWindow | undefined;
    if (spec.issuer === RKS_CA) {
      const signed = await this.pki.sign(managedRoleName(roleId(fqdn)), csrPem, spec.lifetime!, token);
      chain = signed.certificate + signed.issuingCa;
    } else {
      ({ chain, window } = await this.acme.orders.obtain(token, spec.issuer, names, csrPem, replacing));
    }
    // What a CA answers is checked like a push: for this key, these names, a chain that links up.
    let tls: ReturnType<typeof validateTlsMaterial>;
    try {
      tls = validateTlsMaterial(fqdn, chain, keyPem);
    } catch (err) {
      throw new Error(`the CA's certificate is unusable: ${(err as Error).message}`);
    }
    const data: SecretData = {
      certificate: tls.certificate,
      private_key: keyPem,
      ...(ttl ? { meta: { ttl } } : {}),
      info: certificateFacts(tls.leaf, tls.chain.length),
      managed: spec,
    };
    return { data, ...(window ? { window } : {}) };
  }

  private spec(fqdn: string, input: ManagedInput): ManagedSpec {
    const sans = [...new Set([fqdn, ...(input.sans ?? []).map((s) => parseFqdn(s))])];
    // A CA signs host names only (RFC 1123 labels: no '_', no '-' at either end), whatever rks stores.
    const unsignable = sans.filter((n) => !HOSTNAME.test(n));
    if (unsignable.length) {
      throw new BadRequest(`a CA signs host names only (letters, digits and '-' inside a label, an optional leading '*.'): ${unsignable.map(quoted).join(', ')} cannot be in a certificate`);
    }
    const keyType = input.keyType ?? MANAGED_DEFAULTS.keyType;
    const issuer = input.issuer?.toLowerCase() ?? RKS_CA;
    if (issuer !== RKS_CA) {
      return { issuer, sans, keyType, ...(input.lifetime !== undefined ? { lifetime: input.lifetime } : {}), ...(input.renewBefore ? { renewBefore: input.renewBefore } : {}) };
    }
    const lifetime = input.lifetime ?? MANAGED_DEFAULTS.lifetime;
    const renewBefore = input.renewBefore ?? Math.floor(lifetime / 3);
    if (renewBefore >= lifetime) throw new BadRequest('renewBefore must be shorter than lifetime');
    if (lifetime - renewBefore < 10) throw new BadRequest('lifetime - renewBefore must be at least 10 seconds');
    return { issuer, sans, keyType, lifetime, renewBefore };
  }
}

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
/** A name a CA puts in a certificate: rks's secret names, without '_' or '-' at a label's ends. */
const HOSTNAME = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})+$`);

/** PKI role names: the name hashed, since a name may hold '*'. */
const roleId = (fqdn: string) => createHash('sha256').update(fqdn).digest('hex').slice(0, 24);

/**
 * When a certificate is replaced: `renewBefore` its end; else at a point of the CA's renewal
 * window (RFC 9773), never in the last tenth of its life (time left for retries); else at two
 * thirds of its life.
 */
export function renewAt(data: SecretData, spec: ManagedSpec, window?: RenewalWindow): number {
  const notAfter = Math.floor(Date.parse(data.info!.notAfter) / 1000);
  if (spec.renewBefore !== undefined) return notAfter - spec.renewBefore;
  const notBefore = Math.floor(Date.parse(data.info!.notBefore) / 1000);
  const lifetime = notAfter - notBefore;
  if (!window) return notBefore + Math.floor((lifetime * 2) / 3);
  // Whatever window a CA gives (Pebble's covers a short certificate's whole life; a window in
  // the past means "now"), a name is not ordered again before half its certificate's life, nor
  // within 36 h of the last order: CAs limit duplicate certificates (Let's Encrypt: 5 a week).
  const floor = notBefore + Math.min(Math.floor(lifetime / 2), MIN_REORDER_SECONDS);
  return Math.max(floor, Math.min(pickInWindow(window), notAfter - Math.ceil(lifetime / 10)));
}

/** The longest a name waits between two orders when its CA's window says sooner. */
const MIN_REORDER_SECONDS = 36 * 3600;

const now = () => Math.floor(Date.now() / 1000);

/** A new key of the spec's type, and a request for the spec's names signed with it. */
function keyAndCsr(spec: ManagedSpec): Promise<KeyAndCsr> {
  const rsa = spec.keyType === 'rsa-3072';
  return newKeyAndCsr({ commonName: spec.sans[0], dnsNames: spec.sans, keyType: rsa ? 'rsa' : 'ec', keyBits: rsa ? 3072 : 256 });
}

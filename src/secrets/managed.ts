import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { RenewalWindow, pickInWindow } from '../acme/ari';
import { AcmeRetryLater } from '../acme/client';
import { AcmeIssuers, RKS_CA } from '../acme/issuers';
import type { ChallengeBoard } from '../acme/challenges';
import type { AcmeOrders } from '../acme/orders';
import { BadRequest, Conflict, NotFound } from '../errors';
import { parseFqdn, quoted } from '../names';
import { newKeyAndCsr } from '../pki/csr';
import { MANAGED_POLICY, kvPath, managedPolicy, managedRoleName } from '../vault/layout';
import { CasMismatch, CertificateAuthority, KvStore, NO_CHANGE, PolicyStore, Session } from '../vault/stores';
import { Copies } from './copies';
import { Catalog } from './catalog';
import { certificateFacts } from './facts';
import { validateTlsMaterial } from './tls';
import type { ManagedKeyType, ManagedSpec, RenewalState, SecretData } from '../records/secrets';



export interface ManagedInput {
  issuer?: string;
  sans?: string[];
  keyType?: ManagedKeyType;
  lifetime?: number;
  renewBefore?: number;
  ttl?: number;
}


interface Schedule {
  secrets: Record<string, RenewalState>;
}

export const MANAGED_DEFAULTS = { lifetime: 86400, keyType: 'ec-p256' as ManagedKeyType };
/** An rks renewing a secret holds it this long; another instance takes over after. */
const CLAIM_SECONDS = 300;
/** Waits after failures: a CA's failed validations count against rate limits, so ACME backs off longer. */
const RETRY_SECONDS = { ca: { min: 30, max: 3600 }, acme: { min: 60, max: 6 * 3600 } };

/**
 * Secrets rks obtains from its own CA (Vault's PKI engine) and renews before they expire. The
 * key is made in rks and stored only in Vault. Any number of rks instances may run the renewal:
 * an instance claims a due secret in the schedule with check-and-set before it asks for a
 * certificate, and writes the new version on the version it read, so a secret is renewed once.
 */
export class ManagedSecrets {
  private readonly catalog: Catalog;
  private readonly copies: Copies;

  constructor(
    private readonly kv: KvStore,
    private readonly policies: PolicyStore,
    private readonly pki: CertificateAuthority,
    private readonly session: Session,
    private readonly logger: Logger,
    private readonly counters?: { renewals: { inc(labels: { issuer: string; result: string }): void } },
    private readonly acme?: { issuers: AcmeIssuers; orders: AcmeOrders; challenges: ChallengeBoard },
  ) {
    this.catalog = new Catalog(kv);
    this.copies = new Copies(kv);
  }

  /** Called when a secret was scheduled for now (the background job runs a pass at once). */
  wake: () => void = () => undefined;

  /** Told after a certificate's expiry changed (the expiry metrics follow within a second). */
  expiryChanged: (fqdn: string, notAfter: string | null) => void = () => undefined;

  /**
   * Creates a managed secret with the caller's (admin) token. From rks's CA: its PKI role and
   * its first certificate, at once ('issued'). From an ACME CA: scheduled, and obtained in the
   * background, where the edges answer the CA's challenges ('pending').
   */
  async create(token: string, name: string, input: ManagedInput): Promise<'issued' | 'pending'> {
    const fqdn = parseFqdn(name);
    const spec = this.spec(fqdn, input);
    if (await this.kv.exists(kvPath.secret(fqdn), token)) throw new Conflict(`secret '${fqdn}' already exists`, 'already_exists');
    if (spec.issuer !== RKS_CA) {
      await this.createPending(token, fqdn, spec, input.ttl);
      return 'pending';
    }
    await this.pki.writeNamesRole(managedRoleName(roleId(fqdn)), spec.sans, spec.lifetime!, token);
    const { data } = await this.issue(fqdn, spec, input.ttl, token);
    await this.kv.writeAt(kvPath.secret(fqdn), data, token, 0, () => new Conflict(`secret '${fqdn}' already exists`, 'already_exists'));
    this.counters?.renewals.inc({ issuer: RKS_CA, result: 'renewed' });
    await this.catalog.refresh(token, fqdn).catch(() => this.catalog.refresh(token, fqdn)).catch(() => undefined);
    this.expiryChanged(fqdn, data.info!.notAfter);
    await this.kv.update<Schedule>(kvPath.managed, token, (s) => ({
      secrets: { ...(s?.secrets ?? {}), [fqdn]: { renewAt: renewAt(data, spec), failures: 0 } },
    }));
    await this.syncPolicy(token);
    return 'issued';
  }

  private async createPending(token: string, fqdn: string, spec: ManagedSpec, ttl: number | undefined): Promise<void> {
    if (!this.acme) throw new BadRequest('ACME issuers are not available');
    const issuer = await this.acme.issuers.get(token, spec.issuer).catch((err) => {
      throw err instanceof NotFound ? new BadRequest(`issuer '${spec.issuer}' not found`) : err;
    });
    if (issuer.status !== 'valid') throw new BadRequest(`issuer '${spec.issuer}' is deactivated`);
    if (spec.sans.some((n) => n.startsWith('*.'))) throw new BadRequest('an ACME CA validates wildcard names by DNS-01, which rks does not answer; use plain names');
    if (spec.lifetime !== undefined) throw new BadRequest('an ACME CA decides the lifetime of its certificates: leave lifetime out');
    const now = Math.floor(Date.now() / 1000);
    await this.kv.update<Schedule>(kvPath.managed, token, (s) => {
      if (s?.secrets[fqdn]) throw new Conflict(`secret '${fqdn}' already exists (waiting for its first certificate)`, 'already_exists');
      return { secrets: { ...(s?.secrets ?? {}), [fqdn]: { renewAt: now, failures: 0, pending: { spec, ...(ttl ? { ttl } : {}) } } } };
    });
    await this.syncPolicy(token);
    this.wake();
  }

  /** Drops a managed secret still waiting for its first certificate; false when there is none. */
  async dropPending(token: string, fqdn: string): Promise<boolean> {
    let dropped = false;
    await this.kv.update<Schedule>(kvPath.managed, token, (s) => {
      if (!s?.secrets[fqdn]?.pending) return NO_CHANGE;
      const secrets = { ...s.secrets };
      delete secrets[fqdn];
      dropped = true;
      return { secrets };
    });
    return dropped;
  }

  /** The schedule entry of each managed secret (for the inventory). */
  async schedule(token: string): Promise<Record<string, RenewalState>> {
    return (await this.kv.read<Schedule>(kvPath.managed, token))?.data.secrets ?? {};
  }

  /**
   * After a rollback or a push over a managed secret (with the admin's token): its schedule, and
   * what rks's identity may write, follow what is stored now.
   */
  async reschedule(token: string, fqdn: string, data: SecretData | null): Promise<void> {
    await this.setSchedule(token, fqdn, data);
    await this.syncPolicy(token);
  }

  private async setSchedule(token: string, fqdn: string, data: SecretData | null): Promise<void> {
    await this.kv.update<Schedule>(kvPath.managed, token, (s) => {
      const secrets = { ...(s?.secrets ?? {}) };
      if (!data?.managed) {
        if (!(fqdn in secrets)) return NO_CHANGE;
        delete secrets[fqdn];
      } else secrets[fqdn] = { renewAt: renewAt(data, data.managed), failures: 0 };
      return { secrets };
    });
  }

  /** One pass: renews every managed secret that is due, with rks's own session. */
  async renewDue(now = Date.now()): Promise<void> {
    const t = Math.floor(now / 1000);
    let due: string[];
    let schedule: Record<string, RenewalState>;
    try {
      schedule = await this.session.run((token) => this.schedule(token));
      due = Object.entries(schedule)
        .filter(([, s]) => s.renewAt <= t)
        .map(([fqdn]) => fqdn);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'managed secrets: cannot read the schedule; will retry');
      return;
    }
    for (const fqdn of due) await this.session.run((token) => this.renew(token, fqdn, t));
    const recheck = Object.entries(schedule).filter(([, s]) => s.renewAt > t && s.ariAt !== undefined && s.ariAt <= t && !s.inProgress);
    for (const [fqdn] of recheck) await this.session.run((token) => this.recheckWindow(token, fqdn, t)).catch(() => undefined);
    await this.session.run((token) => this.acme?.challenges.sweep(token, now) ?? Promise.resolve()).catch(() => undefined);
  }

  /** The schedule entries of secrets that wait for their first certificate. */
  async pending(token: string): Promise<Record<string, RenewalState & { pending: NonNullable<RenewalState['pending']> }>> {
    const all = await this.schedule(token);
    return Object.fromEntries(Object.entries(all).filter(([, s]) => s.pending)) as never;
  }

  private async renew(token: string, fqdn: string, t: number): Promise<void> {
    // Claim it: of several rks instances, the one whose write lands renews it.
    let claimed: RenewalState | undefined;
    try {
      await this.kv.update<Schedule>(
        kvPath.managed,
        token,
        (s) => {
          const state = s?.secrets[fqdn];
          if (!state || state.renewAt > t) return NO_CHANGE;
          claimed = { ...state, renewAt: t + CLAIM_SECONDS, lastAttempt: new Date(t * 1000).toISOString(), inProgress: true, claim: randomUUID() };
          return { secrets: { ...s!.secrets, [fqdn]: claimed } };
        },
        { attempts: 1, ms: 0 },
      );
    } catch {
      return; // another instance changed the schedule first: it has it
    }
    if (!claimed) return;

    let spec = claimed.pending?.spec;
    let next: SecretData;
    let window: RenewalWindow | undefined;
    /** The new certificate is in Vault: what fails after it is the copies' business alone. */
    let stored = false;
    // Whatever fails from here is recorded (lastError, the failed counter): a managed secret is
    // either renewing or visibly failing, never silently stuck.
    try {
      const current = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
      // A secret waiting for its first certificate has its spec in the schedule; once stored, in the secret.
      spec = current ? current.data.managed : claimed.pending?.spec;
      if (!spec) {
        await this.setSchedule(token, fqdn, null);
        return;
      }
      // Copies only, unless what is stored is itself due (the copies kept failing that long).
      if (claimed.copiesBehind && current?.data.info && renewAt(current.data, spec) > t) {
        next = current.data;
        await this.copies.fanOut(token, fqdn);
      } else {
        ({ data: next, window } = await this.issue(fqdn, spec, current ? current.data.meta?.ttl : claimed.pending?.ttl, token, current?.data.certificate));
        // An order can outlive its claim: another instance took the secret over, or an admin
        // deleted it meanwhile. Then this certificate is not written.
        if (!(await this.holds(token, fqdn, claimed.claim!))) {
          this.logger.info({ fqdn }, 'managed secret: the claim ran out during the order; another attempt or a deletion took over, this certificate is dropped');
          return;
        }
        await this.kv.write(kvPath.secret(fqdn), next, token, current?.version ?? 0);
        stored = true;
        // The groups' copies first (what nodes read), beside the record that they may lag: should
        // rks stop now, the next attempt copies and orders nothing.
        const { pending: _pending, ...held } = claimed;
        const [, copied] = await Promise.allSettled([
          this.setState(token, fqdn, { ...held, copiesBehind: true }, claimed.claim),
          this.copies.fanOut(token, fqdn),
        ]);
        this.counters?.renewals.inc({ issuer: spec.issuer, result: 'renewed' });
        this.logger.info({ fqdn, notAfter: next.info!.notAfter }, 'managed secret renewed');
        await this.catalog.refresh(token, fqdn).catch(() => this.catalog.refresh(token, fqdn)).catch((err) => {
          this.logger.warn({ fqdn, err: (err as Error).message }, 'managed secret renewed, but the inventory could not be told');
        });
        this.expiryChanged(fqdn, next.info!.notAfter);
        if (copied.status === 'rejected') throw copied.reason;
      }
    } catch (err) {
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
        this.counters?.renewals.inc({ issuer, result: 'copies_failed' });
        this.logger.warn({ fqdn, err: message, retryInSeconds: wait }, "managed secret: its groups' copies were not updated; will update them (and order nothing)");
        return;
      }
      this.counters?.renewals.inc({ issuer, result: 'failed' });
      this.logger.warn({ fqdn, err: message, retryInSeconds: wait }, 'managed secret renewal failed; will retry');
      return;
    }
    // Renewed and copied. The schedule is tried twice (else the claim runs out and it is renewed early).
    const state: RenewalState = {
      renewAt: renewAt(next, spec, window),
      failures: 0,
      lastAttempt: claimed.lastAttempt,
      ...(window ? { ariAt: t + window.recheckIn } : claimed.ariAt !== undefined ? { ariAt: claimed.ariAt } : {}),
    };
    await this.setState(token, fqdn, state, claimed.claim).catch(() => this.setState(token, fqdn, state, claimed!.claim)).catch((err) => {
      this.logger.warn({ fqdn, err: (err as Error).message }, 'managed secret renewed, but its next date could not be recorded');
    });
  }

  /**
   * Asks the ACME CA again for a certificate's renewal window (RFC 9773: a CA moves it earlier
   * when it must revoke) and moves the renewal into it when it is outside.
   */
  private async recheckWindow(token: string, fqdn: string, t: number): Promise<void> {
    const current = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
    const spec = current?.data.managed;
    if (!spec || spec.issuer === RKS_CA || spec.renewBefore !== undefined || !this.acme) return;
    const window = await this.acme.orders.window(token, spec.issuer, current.data.certificate).catch(() => undefined);
    let moved: number | undefined;
    await this.kv.update<Schedule>(kvPath.managed, token, (s) => {
      const state = s?.secrets[fqdn];
      moved = undefined;
      if (!state || state.inProgress || state.renewAt <= t) return NO_CHANGE;
      const inside = window && state.renewAt >= window.start && state.renewAt <= window.end;
      if (window && !inside) moved = Math.max(t, renewAt(current.data, spec, window));
      return { secrets: { ...s!.secrets, [fqdn]: { ...state, ariAt: t + (window?.recheckIn ?? 3600), ...(moved !== undefined ? { renewAt: moved } : {}) } } };
    });
    if (moved !== undefined) this.logger.info({ fqdn, renewAt: new Date(moved * 1000).toISOString() }, 'the CA moved the renewal window; renewal rescheduled');
  }

  /** Records an attempt's outcome, if the entry is still there and (with `claim`) still that attempt's. */
  private async setState(token: string, fqdn: string, state: RenewalState, claim?: string): Promise<void> {
    await this.kv.update<Schedule>(kvPath.managed, token, (s) => {
      const entry = s?.secrets[fqdn];
      if (!entry || (claim !== undefined && entry.claim !== claim)) return NO_CHANGE;
      return { secrets: { ...s!.secrets, [fqdn]: state } };
    });
  }

  private async holds(token: string, fqdn: string, claim: string): Promise<boolean> {
    return (await this.schedule(token))[fqdn]?.claim === claim;
  }

  /** A fresh key (made here) and a certificate for it: from the secret's own PKI role, or an ACME order. */
  private async issue(fqdn: string, spec: ManagedSpec, ttl: number | undefined, token: string, replacing?: string): Promise<{ data: SecretData; window?: RenewalWindow }> {
    const names = spec.sans;
    const rsa = spec.keyType === 'rsa-3072';
    const { keyPem, csrPem } = await newKeyAndCsr({ commonName: names[0], dnsNames: names, keyType: rsa ? 'rsa' : 'ec', keyBits: rsa ? 3072 : 256 });
    let chain: string;
    let window: RenewalWindow | undefined;
    if (spec.issuer === RKS_CA) {
      const signed = await this.pki.sign(managedRoleName(roleId(fqdn)), csrPem, spec.lifetime!, token);
      chain = signed.certificate + signed.issuingCa;
    } else {
      if (!this.acme) throw new Error('ACME issuers are not available');
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

  /** The service identity may write exactly the managed secrets (rks_managed), as the schedule lists them. */
  private async syncPolicy(token: string): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const before = await this.kv.read<Schedule>(kvPath.managed, token);
      await this.policies.putPolicy(MANAGED_POLICY, managedPolicy(Object.keys(before?.data.secrets ?? {})), token);
      const after = await this.kv.read<Schedule>(kvPath.managed, token);
      if ((after?.version ?? 0) === (before?.version ?? 0)) return;
    }
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

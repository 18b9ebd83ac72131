import type { Logger } from 'pino';
import { RenewalWindow, ariCertId, renewalWindow, supportsAri } from './ari';
import { AcmeRetryLater, acmeClient } from './client';
import type { ChallengeBoard } from './challenges';
import type { AcmeIssuers } from './issuers';

export interface OrderCounters {
  orders: { inc(labels: { issuer: string; result: string }): void };
}

/** How long the edges are told a key authorisation is wanted. */
const CHALLENGE_SECONDS = 600;

/**
 * One ACME order (RFC 8555 §7.4) for a managed secret: new order, HTTP-01 for each name with
 * the key authorisation published to the edges, finalisation with rks's CSR, the chain.
 * Every request has a deadline; polls back off to about a minute; a CA that asks to wait
 * (429, 503 with Retry-After) gets AcmeRetryLater so the schedule waits as long.
 */
export class AcmeOrders {
  constructor(
    private readonly issuers: AcmeIssuers,
    private readonly board: ChallengeBoard,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    private readonly counters?: OrderCounters,
  ) {}

  /**
   * The certificate chain (PEM, leaf first) for `csrPem`, whose names are `names`, and the CA's
   * renewal window for it when the CA has one (RFC 9773). `replacing` is the certificate this
   * one replaces, named in the order so the CA can relax its limits for renewals.
   */
  async obtain(token: string, issuer: string, names: string[], csrPem: string, replacing?: string): Promise<{ chain: string; window?: RenewalWindow }> {
    try {
      const got = await this.order(token, issuer, names, csrPem, replacing);
      this.counters?.orders.inc({ issuer, result: 'issued' });
      return got;
    } catch (err) {
      this.counters?.orders.inc({ issuer, result: 'failed' });
      throw err;
    }
  }

  /** The CA's current renewal window for a certificate it issued, or undefined. */
  async window(token: string, issuer: string, leafPem: string): Promise<RenewalWindow | undefined> {
    return renewalWindow(await this.client(token, issuer).then((c) => c.client), leafPem);
  }

  private async client(token: string, issuer: string) {
    const r = await this.issuers.record(token, issuer);
    if (r.status !== 'valid') throw new Error(`issuer '${issuer}' is deactivated`);
    return acmeClient({ directory: r.directory, caBundle: r.caBundle }, { accountKey: r.accountKey, accountUrl: r.accountUrl, timeoutMs: this.timeoutMs });
  }

  private async order(token: string, issuer: string, names: string[], csrPem: string, replacing?: string): Promise<{ chain: string; window?: RenewalWindow }> {
    const { client, retryAfter } = await this.client(token, issuer);
    const published: string[] = [];
    try {
      const identifiers = names.map((value) => ({ type: 'dns', value }));
      const replaces = replacing && (await supportsAri(client)) ? await ariCertId(replacing).catch(() => undefined) : undefined;
      let order = replaces
        ? await client.createOrder({ identifiers, replaces } as never).catch((err: Error) => {
            // A CA that will not take this certificate as the one replaced still issues a new one.
            this.logger.info({ issuer, err: err.message }, 'ACME order naming the certificate it replaces refused; ordering without');
            return client.createOrder({ identifiers });
          })
        : await client.createOrder({ identifiers });
      const started = Date.now();
      for (const authz of await client.getAuthorizations(order)) {
        if (authz.status === 'valid') continue; // the CA remembers a recent validation
        const name = authz.identifier.value;
        const challenge = authz.challenges.find((c) => c.type === 'http-01');
        if (!challenge) throw new Error(`the CA offers no http-01 challenge for ${name}`);
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        const expiresAt = new Date(started + CHALLENGE_SECONDS * 1000).toISOString();
        await this.board.publish(token, challenge.token, { keyAuthorization, fqdn: name, expiresAt });
        published.push(challenge.token);
        await client.completeChallenge(challenge);
        try {
          await client.waitForValidStatus(challenge);
        } catch (err) {
          throw new Error(`validation of ${name} failed: ${(err as Error).message}`);
        }
        this.logger.info({ fqdn: name, issuer }, 'ACME challenge validated');
      }
      order = await client.finalizeOrder(order, csrPem);
      const chain = await client.getCertificate(order);
      const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(chain)?.[0];
      const window = leaf ? await renewalWindow(client, leaf).catch(() => undefined) : undefined;
      return { chain, ...(window ? { window } : {}) };
    } catch (err) {
      const wait = retryAfter();
      if (wait !== undefined) throw new AcmeRetryLater((err as Error).message, wait);
      throw err;
    } finally {
      for (const t of published) await this.board.remove(token, t).catch(() => undefined);
    }
  }
}

import type { Logger } from 'pino';
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

  /** The certificate chain (PEM, leaf first) for `csrPem`, whose names are `names`. */
  async obtain(token: string, issuer: string, names: string[], csrPem: string): Promise<string> {
    try {
      const chain = await this.order(token, issuer, names, csrPem);
      this.counters?.orders.inc({ issuer, result: 'issued' });
      return chain;
    } catch (err) {
      this.counters?.orders.inc({ issuer, result: 'failed' });
      throw err;
    }
  }

  private async order(token: string, issuer: string, names: string[], csrPem: string): Promise<string> {
    const r = await this.issuers.record(token, issuer);
    if (r.status !== 'valid') throw new Error(`issuer '${issuer}' is deactivated`);
    const { client, retryAfter } = acmeClient(
      { directory: r.directory, caBundle: r.caBundle },
      { accountKey: r.accountKey, accountUrl: r.accountUrl, timeoutMs: this.timeoutMs },
    );
    const published: string[] = [];
    try {
      let order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
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
      return await client.getCertificate(order);
    } catch (err) {
      const wait = retryAfter();
      if (wait !== undefined) throw new AcmeRetryLater((err as Error).message, wait);
      throw err;
    } finally {
      for (const t of published) await this.board.remove(token, t).catch(() => undefined);
    }
  }
}

import { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { PkiService } from '../pki/service';
import { selfSignedCertificate } from '../pki/selfsigned';
import type { TlsFiles } from './server';

/** setTimeout's upper bound (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

export interface ManagedCertificateOptions {
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  lifetimeSeconds: number;
  /** Renew this long before the certificate expires. */
  renewBeforeSeconds: number;
  /** Wait between attempts while there is no CA yet or Vault fails. */
  retrySeconds: number;
}

/**
 * rks's own server certificate, issued by its CA in Vault and renewed before it expires.
 * Until the CA exists (before init) it serves an ephemeral self-signed certificate and keeps
 * trying; `refresh()` tries at once (right after init). Every new certificate goes to those
 * `onIssued` names (the server, which swaps it in for new handshakes, open connections untouched).
 */
export class ManagedCertificate {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private issuing?: Promise<boolean>;
  private started = false;
  private readonly issued: Array<(tls: TlsFiles) => void> = [];
  current?: { tls: TlsFiles; selfSigned: boolean; notAfter: Date };

  constructor(
    private readonly pki: PkiService,
    private readonly opts: ManagedCertificateOptions,
    private readonly logger: Logger,
  ) {}

  /** `apply` gets every certificate issued after the first. */
  onIssued(apply: (tls: TlsFiles) => void): void {
    this.issued.push(apply);
  }

  /** The certificate to start serving with. */
  async start(): Promise<TlsFiles> {
    this.started = true;
    if (!(await this.issue())) {
      const eph = await selfSignedCertificate(this.opts.commonName);
      this.current = { tls: eph, selfSigned: true, notAfter: new Date(new X509Certificate(eph.cert).validTo) };
      this.logger.warn('serving with an ephemeral self-signed certificate until rks is initialised and has its CA');
      this.schedule(this.opts.retrySeconds);
    }
    return this.current!.tls;
  }

  /** Tries to (re)issue now, once started; resolves true when a CA-issued certificate is in use. */
  refresh(): Promise<boolean> {
    return this.started ? this.issue() : Promise.resolve(false);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private issue(): Promise<boolean> {
    this.issuing ??= this.issueOnce().finally(() => (this.issuing = undefined));
    return this.issuing;
  }

  private async issueOnce(): Promise<boolean> {
    const { commonName, dnsNames, ipAddresses, lifetimeSeconds, renewBeforeSeconds, retrySeconds } = this.opts;
    try {
      const issued = await this.pki.issueServerCertificate(commonName, dnsNames, ipAddresses, lifetimeSeconds);
      const tls = { cert: issued.chain, key: issued.key };
      const first = !this.current || this.current.selfSigned;
      this.current = { tls, selfSigned: false, notAfter: issued.notAfter };
      for (const apply of this.issued) apply(tls);
      const fingerprint = new X509Certificate(issued.cert).fingerprint256;
      this.logger.info({ notAfter: issued.notAfter.toISOString(), fingerprint }, first ? 'serving with a certificate from the rks CA' : 'server certificate renewed');
      const renewIn = (issued.notAfter.getTime() - Date.now()) / 1000 - renewBeforeSeconds;
      this.schedule(Math.max(1, renewIn));
      return true;
    } catch (err) {
      if (this.current && !this.current.selfSigned) {
        this.logger.warn({ err: (err as Error).message }, 'server certificate renewal failed; will retry');
      } else {
        this.logger.debug({ err: (err as Error).message }, 'no certificate from the rks CA yet');
      }
      this.schedule(retrySeconds);
      return false;
    }
  }

  /** Issues again in `seconds`; waits in steps because timers cannot span more than ~24.8 days. */
  private schedule(seconds: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const due = Date.now() + seconds * 1000;
    const wait = () => {
      const left = due - Date.now();
      this.timer = setTimeout(() => (left > MAX_TIMER_MS ? wait() : void this.issue()), Math.min(Math.max(left, 0), MAX_TIMER_MS));
      this.timer.unref();
    };
    wait();
  }
}

import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp } from './app';
import { Periodic } from '../background/periodic';
import type { Config } from '../config';
import { HttpMetrics, createMetrics } from '../metrics';
import { localNames } from '../pki/selfsigned';
import { ManagedCertificate } from './certificate';
import { RunningServer, TlsFiles, startServer } from './server';
import { Services, Tuning, buildServices } from './services';
import { LayoutWatch } from '../vault/layout-watch';

export interface Rks {
  url: string;
  app: Express;
  services: Services;
  /** Stops accepting, lets requests in flight finish, stops background work, closes Vault's pool. */
  stop(): Promise<void>;
}

export interface BuildOptions {
  metrics?: HttpMetrics;
  /** Check every answer against the contract too (tests). */
  validateResponses?: boolean;
  onInitialised?: () => void;
  tuning?: Tuning;
}

/** The services and the app of one rks, not yet listening and with no background work running. */
export function buildRks(config: Config, logger: Logger, opts: BuildOptions = {}): { services: Services; app: Express } {
  const services = buildServices(config, logger, opts.metrics ?? createMetrics(), opts.tuning);
  const app = createApp(services, {
    logger,
    trustProxy: config.trustProxy,
    requirePsk: config.requirePsk,
    validateResponses: opts.validateResponses,
    onInitialised: opts.onInitialised,
  });
  return { services, app };
}

/**
 * The one place that builds a running rks from its configuration: the services (Vault client,
 * rks's own session, PKI, groups, nodes, secrets), the app, the background jobs (group-token
 * renewal, node pruning), its TLS certificate, and the server.
 */
export async function startRks(config: Config, logger: Logger): Promise<Rks> {
  let managed: ManagedCertificate | undefined;
  const { services, app } = buildRks(config, logger, { onInitialised: () => void managed?.refresh() });
  const { vault, pki, renewer, pruner, expiryWatch, managed: managedSecrets } = services;
  let running: RunningServer | undefined;
  const names = localNames([config.hostname, ...config.san]);
  if (config.tls === 'managed') {
    managed = new ManagedCertificate(
      pki,
      {
        commonName: config.hostname,
        dnsNames: names.dns,
        ipAddresses: names.ips,
        lifetimeSeconds: config.certLifetime,
        renewBeforeSeconds: config.certRenewBefore,
        retrySeconds: 10,
      },
      logger,
      (tls) => running?.setCertificate(tls),
    );
  }

  if (managed) {
    const cert = managed;
    // Once rks can log in, its CA exists: the ephemeral certificate should have been replaced.
    services.readiness.certificate = () => (cert.current?.selfSigned ? 'still serving the ephemeral self-signed certificate; its certificate from the rks CA is not issued yet' : undefined);
  }

  const renewals = new Periodic(config.managedCheckInterval * 1000, services.layout.gate(() => managedSecrets.renewDue()));
  managedSecrets.wake = () => renewals.runNow();
  const expiryChecks = new Periodic(config.expiryCheckInterval * 1000, () => expiryWatch.pass());
  services.secrets.expiryChanged = (fqdn, notAfter) => expiryWatch.note(fqdn, notAfter);
  managedSecrets.expiryChanged = (fqdn, notAfter) => expiryWatch.note(fqdn, notAfter, true);
  const background = [
    new Periodic(LayoutWatch.INTERVAL_MS, () => services.layout.check()),
    new Periodic(config.groupTokenRenewInterval * 1000, services.layout.gate(() => renewer.renewAll())),
    new Periodic(Math.min(config.nodeIdleExpiry * 1000, 3600_000), services.layout.gate(() => pruner.pruneAll())),
    expiryChecks,
    renewals,
  ];
  for (const job of background) job.start();

  const ranges = config.trustProxy.filter((p) => p === 'linklocal' || p === 'uniquelocal' || (p.includes('/') && !/\/(32|128)$/.test(p)));
  if (ranges.length) {
    logger.warn(
      { trustProxy: ranges },
      'every host in these ranges is trusted to name the client (X-Forwarded-For): any of them can put made-up addresses in the login limits, or keep the administrator\'s address refused; name the proxies\' own addresses instead',
    );
  }
  let tls: TlsFiles | null = config.tls && config.tls !== 'managed' ? config.tls : null;
  if (!config.tls) {
    logger.warn('TLS is off (--no-tls): tokens and private keys cross the network in clear text');
  } else if (managed) {
    tls = await managed.start();
    if (managed.current?.selfSigned) announceEphemeral(tls, config.ephemeralCertOut, logger);
  }

  // Not a request served before this instance knows whether a newer rks moved the layout on.
  await services.layout.check();
  running = await startServer(app, config.listen, tls, logger);
  logger.info({ url: running.url, vault: vault.addrs, pskConfigured: Boolean(config.psk), requirePsk: config.requirePsk }, 'rks listening');
  const server = running;
  return {
    url: server.url,
    app,
    services,
    async stop() {
      managed?.stop();
      await server.close(config.shutdownGrace * 1000);
      await Promise.all(background.map((job) => job.stop()));
      expiryWatch.stop();
      vault.close();
    },
  };
}

/** Before init: the self-signed certificate's fingerprint and pin, so the one init call can be made safely. */
function announceEphemeral(tls: TlsFiles, out: string | undefined, logger: Logger): void {
  const cert = new X509Certificate(tls.cert);
  const pin = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  logger.warn({ fingerprint: cert.fingerprint256, pinnedPubKey: `sha256//${pin}` }, 'the ephemeral certificate; pin it (curl --pinnedpubkey) to init safely');
  if (out) {
    fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
    fs.writeFileSync(out, tls.cert);
    logger.info({ file: out }, 'wrote the ephemeral certificate');
  }
}

import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp } from './app';
import type { Config } from '../config';
import { HttpMetrics, createMetrics } from '../metrics';
import { TlsFiles, startServer } from './server';
import { Services, Tuning, buildServices } from './services';

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
  });
  return { services, app };
}

/**
 * A running rks from its configuration: the services and the app (buildRks), its background jobs
 * and its TLS certificate started, and the server listening.
 */
export async function startRks(config: Config, logger: Logger): Promise<Rks> {
  const { services, app } = buildRks(config, logger);
  const { vault, certificate, jobs, expiryWatch } = services;
  for (const job of jobs) job.start();

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
  } else if (certificate) {
    tls = await certificate.start();
    if (certificate.current?.selfSigned) announceEphemeral(tls, config.ephemeralCertOut, logger);
  }

  // Not a request served before this instance knows whether a newer rks moved the layout on.
  await services.layout.check();
  const running = await startServer(app, config.listen, tls, logger);
  certificate?.onIssued((next) => running.setCertificate(next));
  // One issued while the server was being started.
  if (certificate?.current && certificate.current.tls !== tls) running.setCertificate(certificate.current.tls);
  logger.info({ url: running.url, vault: vault.addrs, pskConfigured: Boolean(config.psk), requirePsk: config.requirePsk }, 'rks listening');
  return {
    url: running.url,
    app,
    services,
    async stop() {
      certificate?.stop();
      await running.close(config.shutdownGrace * 1000);
      await Promise.all(jobs.map((job) => job.stop()));
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

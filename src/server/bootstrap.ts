import { X509Certificate, createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createApp } from '../app';
import { Periodic } from '../background/periodic';
import type { Config } from '../config';
import { GroupTokenRenewer } from '../groups/renewer';
import { createMetrics } from '../metrics';
import { NodePruner } from '../nodes/pruner';
import { localNames } from '../pki/selfsigned';
import { PkiService } from '../pki/service';
import { VaultClient } from '../vault/client';
import { Kv } from '../vault/kv';
import { Pki } from '../vault/pki';
import { ServiceSession } from '../vault/session';
import { Tokens } from '../vault/tokens';
import { ManagedCertificate } from './certificate';
import { RunningServer, TlsFiles, startServer } from './server';

export interface Rks {
  url: string;
  app: Express;
  /** Stops accepting, lets requests in flight finish, stops background work, closes Vault's pool. */
  stop(): Promise<void>;
}

/**
 * The one place that builds a running rks from its configuration: the Vault client, rks's own
 * session, the PKI service, the app with every service, the background jobs (group-token
 * renewal, node pruning), its TLS certificate, and the server.
 */
export async function startRks(config: Config, logger: Logger): Promise<Rks> {
  const metrics = createMetrics();
  const vault = new VaultClient({ addr: config.vaultAddr, caFile: config.vaultCaFile, registry: metrics.registry });
  const session = new ServiceSession(vault, config.admin, logger);
  const pki = new PkiService(new Pki(vault), session);
  let running: RunningServer | undefined;
  const names = localNames([config.certificate.hostname, ...config.certificate.san]);
  const managed =
    config.tls === 'managed'
      ? new ManagedCertificate(
          pki,
          {
            commonName: config.certificate.hostname,
            dnsNames: names.dns,
            ipAddresses: names.ips,
            lifetimeSeconds: config.certificate.lifetime,
            renewBeforeSeconds: config.certificate.renewBefore,
            retrySeconds: 10,
          },
          logger,
          (tls) => running?.setCertificate(tls),
        )
      : undefined;

  const app = createApp({
    vault,
    logger,
    metrics,
    adminLogin: config.admin.login,
    adminPassword: config.admin.password,
    defaultSecretTtl: config.defaultSecretTtl,
    loginLimits: config.loginLimits,
    maxNodesPerGroup: config.maxNodesPerGroup,
    trustProxy: config.trustProxy,
    session,
    pkiService: pki,
    psk: config.psk,
    requirePsk: config.requirePsk,
    caBundle: config.caBundle,
    onInitialised: () => void managed?.refresh(),
    nodeTokenPeriod: config.nodeTokenPeriod,
    callback: config.callback,
  });

  const renewer = new GroupTokenRenewer(new Kv(vault), new Tokens(vault), session, logger);
  const pruner = new NodePruner(new Kv(vault), new Tokens(vault), session, config.nodeIdleExpiry * 1000, logger, metrics.nodesPruned);
  const background = [
    new Periodic(config.groupTokenRenewInterval * 1000, () => renewer.renewAll()),
    new Periodic(Math.min(config.nodeIdleExpiry * 1000, 3600_000), () => pruner.pruneAll()),
  ];
  for (const job of background) job.start();

  let tls: TlsFiles | null = config.tls && config.tls !== 'managed' ? config.tls : null;
  if (!config.tls) {
    logger.warn('TLS is off (--no-tls): tokens and private keys cross the network in clear text');
  } else if (managed) {
    tls = await managed.start();
    if (managed.current?.selfSigned) announceEphemeral(tls, config.ephemeralCertOut, logger);
  }

  running = await startServer(app, config.listen, tls, logger);
  logger.info({ url: running.url, vault: vault.addr, pskConfigured: Boolean(config.psk), requirePsk: config.requirePsk }, 'rks listening');
  const server = running;
  return {
    url: server.url,
    app,
    async stop() {
      managed?.stop();
      await server.close();
      await Promise.all(background.map((job) => job.stop()));
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

import type { Logger } from 'pino';
import { ChallengeBoard } from '../acme/challenges';
import { AcmeIssuers } from '../acme/issuers';
import { AcmeOrders } from '../acme/orders';
import { OrderPacing } from '../acme/pacing';
import { AdminService } from '../admin/service';
import { Periodic } from '../background/periodic';
import { CallbackOptions, CallbackVerifier } from '../callback/verifier';
import type { Config } from '../config';
import { GroupTokenRenewer } from '../groups/renewer';
import { GroupService } from '../groups/service';
import { InitService } from '../init/service';
import type { HttpMetrics as Metrics } from '../metrics';
import { NodePruner } from '../nodes/pruner';
import { NodeService } from '../nodes/service';
import { PskJwt } from '../pki/psk';
import { localNames } from '../pki/selfsigned';
import { PkiService } from '../pki/service';
import { ExpiryWatch } from '../managed/expiry-watch';
import { Inventory } from '../secrets/inventory';
import { Listings } from '../secrets/listing';
import { ManagedSecrets } from '../managed/service';
import { Readers } from '../secrets/readers';
import { SecretService } from '../secrets/service';
import { Storage } from '../secrets/storage';
import { vaultStores } from '../vault/adapters';
import type { VaultStores } from '../vault/stores';
import { VaultClient } from '../vault/client';
import { LayoutWatch } from '../vault/layout-watch';
import { Readiness } from '../vault/readiness';
import { ServiceSession } from '../vault/session';
import { ManagedCertificate } from './certificate';

/** Everything rks does, built once per process from its configuration; HTTP only calls into it. */
export interface Services {
  vault: VaultClient;
  metrics: Metrics;
  /** rks's own Vault login, shared by the services and the background jobs. */
  session: ServiceSession;
  init: InitService;
  admin: AdminService;
  groups: GroupService;
  nodes: NodeService;
  secrets: SecretService;
  managed: ManagedSecrets;
  acme: { issuers: AcmeIssuers; challenges: ChallengeBoard; pacing: OrderPacing };
  inventory: Inventory;
  pki: PkiService;
  psk?: PskJwt;
  readiness: Readiness;
  /** Whether a newer rks moved the layout on (this one then writes nothing). */
  layout: LayoutWatch;
  expiryWatch: ExpiryWatch;
  /** rks's own server certificate from its CA (`tls: managed`), not started yet. */
  certificate?: ManagedCertificate;
  /** The background jobs (managed renewals, expiry checks, group-token renewal, node pruning, the layout's watch), not started yet. */
  jobs: Periodic[];
}

/** What tests may tune beyond the settings. */
export interface Tuning {
  callback?: Pick<CallbackOptions, 'caCheckMs'>;
}

/** The one place where rks's parts are made and handed to each other, each whole once made. */
export function buildServices(config: Config, logger: Logger, metrics: Metrics, tuning: Tuning = {}): Services {
  const vault = new VaultClient({
    addr: config.vaultAddrs,
    caFile: config.vaultCaFile,
    timeoutMs: config.vaultTimeout * 1000,
    maxInFlight: config.vaultMaxInFlight,
    registry: metrics.registry,
  });
  const stores = vaultStores(vault);
  const { kv, setup: sys, tokens, pki: pkiEngine } = stores;
  const session = new ServiceSession(vault, config.admin, logger, metrics.sessionUp);
  const layout = new LayoutWatch(vault, kv, session, logger);
  const acme = acmeParts(config, stores, session, logger, metrics);
  const { issuers: acmeIssuers, challenges, pacing } = acme;
  const storage = new Storage(kv);
  // The catalog's one listing in memory: the inventory pages from it, the expiry metrics read it.
  const listings = new Listings(storage.catalog);
  const expiryWatch = expiryWatchOf(config, listings, session, logger, metrics, acme);
  // Made before what it runs (a secret scheduled for now wakes it): its rounds begin once started.
  const renewals = new Periodic(config.managedCheckInterval * 1000, layout.gate(() => managed.renewDue()));
  const managed = new ManagedSecrets(storage, pkiEngine, session, logger, {
    counters: { renewals: metrics.managedRenewals },
    acme,
    expiry: expiryWatch,
    wake: () => renewals.runNow(),
  });
  const secrets = new SecretService(storage, config.defaultSecretTtl, { managed, readers: new Readers(tokens), expiry: expiryWatch });
  const pki = new PkiService(pkiEngine, session);
  const certificate = config.tls === 'managed' ? serverCertificate(config, pki, logger) : undefined;
  const renewer = new GroupTokenRenewer(kv, tokens, session, logger);
  const pruner = new NodePruner(kv, storage.nodes, tokens, session, config.nodeIdleExpiry * 1000, logger, metrics.nodesPruned);
  return {
    vault,
    metrics,
    session,
    init: new InitService(stores, config.admin, config.caBundle, storage),
    admin: new AdminService(sys, tokens, { perSource: config.loginRateLimit, perLogin: config.loginFailureLimit }, config.admin),
    groups: new GroupService(storage, sys, tokens, session),
    nodes: nodeService(config, storage, stores, session, logger, metrics, tuning),
    secrets,
    managed,
    acme: { issuers: acmeIssuers, challenges, pacing },
    inventory: new Inventory(storage, (data) => secrets.ttlOf(data), listings),
    pki,
    psk: config.psk ? new PskJwt(config.psk) : undefined,
    // Once rks can log in, its CA exists: the ephemeral certificate should have been replaced.
    readiness: new Readiness(vault, session, layout, metrics.ready, () =>
      certificate?.current?.selfSigned ? 'still serving the ephemeral self-signed certificate; its certificate from the rks CA is not issued yet' : undefined,
    ),
    layout,
    expiryWatch,
    certificate,
    jobs: [
      new Periodic(LayoutWatch.INTERVAL_MS, () => layout.check()),
      new Periodic(config.groupTokenRenewInterval * 1000, layout.gate(() => renewer.renewAll())),
      new Periodic(Math.min(config.nodeIdleExpiry * 1000, 3600_000), layout.gate(() => pruner.pruneAll())),
      new Periodic(config.expiryCheckInterval * 1000, () => expiryWatch.pass()),
      renewals,
    ],
  };
}

/** The ACME side of managed secrets: the issuers, the challenges edges answer, the order budget's queue, the orders. */
function acmeParts(config: Config, stores: VaultStores, session: ServiceSession, logger: Logger, metrics: Metrics) {
  const issuers = new AcmeIssuers(stores.kv, config.acmeTimeout * 1000);
  const challenges = new ChallengeBoard(stores.kv, stores.tokens, session);
  const orders = new AcmeOrders(issuers, challenges, config.acmeTimeout * 1000, logger, { orders: metrics.acmeOrders });
  return { issuers, challenges, pacing: new OrderPacing(stores.kv), orders };
}

/** Certificates' expiry in metrics and logs, and the managed renewals' and ACME queue's figures, from the catalog's listing. */
function expiryWatchOf(config: Config, listings: Listings, session: ServiceSession, logger: Logger, metrics: Metrics, acme: ReturnType<typeof acmeParts>): ExpiryWatch {
  return new ExpiryWatch(
    listings,
    session,
    {
      expiry: metrics.secretExpiry,
      expiring: metrics.secretsExpiring,
      lastPass: metrics.expiryPass,
      managed: metrics.managedSecrets,
      acmeNextSlot: metrics.acmeNextSlot,
      acmeQueueThrough: metrics.acmeQueueThrough,
    },
    logger,
    { warnDays: config.expiryWarningDays, seriesLimit: config.expiryMetricLimit },
    { issuers: acme.issuers, pacing: acme.pacing },
  );
}

/** Registration and revalidation of edge nodes, with the callback check of each that registers. */
function nodeService(config: Config, storage: Storage, stores: VaultStores, session: ServiceSession, logger: Logger, metrics: Metrics, tuning: Tuning): NodeService {
  const verifier = new CallbackVerifier({ timeoutMs: config.callbackTimeout * 1000, caFiles: config.callbackCaFile, insecure: config.callbackInsecure, ...tuning.callback }, logger);
  const limits = { tokenPeriod: config.nodeTokenPeriod, maxNodesPerGroup: config.maxNodesPerGroup };
  return new NodeService(storage, stores.tokens, session, verifier, limits, metrics.nodeLimitRefusals, logger);
}

/** rks's server certificate from its CA, for its host name and the other names it is reached by. */
function serverCertificate(config: Config, pki: PkiService, logger: Logger): ManagedCertificate {
  const names = localNames([config.hostname, ...config.san]);
  return new ManagedCertificate(
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
  );
}

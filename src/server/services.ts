import type { Logger } from 'pino';
import { ChallengeBoard } from '../acme/challenges';
import { AcmeIssuers } from '../acme/issuers';
import { AcmeOrders } from '../acme/orders';
import { AdminService } from '../admin/service';
import { CallbackOptions, CallbackVerifier } from '../callback/verifier';
import type { Config } from '../config';
import { GroupTokenRenewer } from '../groups/renewer';
import { GroupService } from '../groups/service';
import { InitService } from '../init/service';
import type { HttpMetrics as Metrics } from '../metrics';
import { NodePruner } from '../nodes/pruner';
import { NodeService } from '../nodes/service';
import { PskJwt } from '../pki/psk';
import { PkiService } from '../pki/service';
import { Catalog } from '../secrets/catalog';
import { Listings } from '../secrets/listing';
import { ExpiryWatch } from '../secrets/expiry-watch';
import { Inventory } from '../secrets/inventory';
import { ManagedSecrets } from '../secrets/managed';
import { OrderPacing } from '../acme/pacing';
import { Readers } from '../secrets/readers';
import { SecretService } from '../secrets/service';
import { vaultStores } from '../vault/adapters';
import { VaultClient } from '../vault/client';
import { ServiceSession } from '../vault/session';
import { Readiness } from '../vault/readiness';
import { LayoutWatch } from '../vault/layout-watch';

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
  renewer: GroupTokenRenewer;
  pruner: NodePruner;
  readiness: Readiness;
  /** Whether a newer rks moved the layout on (this one then writes nothing). */
  layout: LayoutWatch;
  expiryWatch: ExpiryWatch;
}

/** What tests may tune beyond the settings. */
export interface Tuning {
  callback?: Pick<CallbackOptions, 'caCheckMs'>;
}

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
  const acmeIssuers = new AcmeIssuers(kv, config.acmeTimeout * 1000);
  const challenges = new ChallengeBoard(kv, tokens, session);
  const pacing = new OrderPacing(kv);
  const acmeOrders = new AcmeOrders(acmeIssuers, challenges, config.acmeTimeout * 1000, logger, { orders: metrics.acmeOrders });
  const managed = new ManagedSecrets(kv, pkiEngine, session, logger, { renewals: metrics.managedRenewals }, { issuers: acmeIssuers, orders: acmeOrders, challenges, pacing });
  const secrets = new SecretService(kv, config.defaultSecretTtl, managed, new Readers(tokens));
  // The catalog's one listing in memory: the inventory pages from it, the expiry metrics read it.
  const listings = new Listings(new Catalog(kv));
  const groups = new GroupService(kv, sys, tokens, session);
  return {
    vault,
    metrics,
    session,
    init: new InitService(stores, config.admin, config.caBundle),
    admin: new AdminService(sys, tokens, { perSource: config.loginRateLimit, perLogin: config.loginFailureLimit }, config.admin),
    groups,
    nodes: new NodeService(
      kv,
      tokens,
      session,
      new CallbackVerifier({ timeoutMs: config.callbackTimeout * 1000, caFiles: config.callbackCaFile, insecure: config.callbackInsecure, ...tuning.callback }, logger),
      { tokenPeriod: config.nodeTokenPeriod, maxNodesPerGroup: config.maxNodesPerGroup },
      metrics.nodeLimitRefusals,
      logger,
    ),
    secrets,
    managed,
    acme: { issuers: acmeIssuers, challenges, pacing },
    inventory: new Inventory(kv, (data) => secrets.ttlOf(data), listings),
    pki: new PkiService(pkiEngine, session),
    psk: config.psk ? new PskJwt(config.psk) : undefined,
    renewer: new GroupTokenRenewer(kv, tokens, session, logger),
    pruner: new NodePruner(kv, tokens, session, config.nodeIdleExpiry * 1000, logger, metrics.nodesPruned),
    readiness: new Readiness(vault, session, layout, metrics.ready),
    layout,
    expiryWatch: new ExpiryWatch(
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
      { issuers: acmeIssuers, pacing },
    ),
  };
}

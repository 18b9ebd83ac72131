import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'method' | 'route' | 'status'>;
  /** Registrations refused because a group reached --max-nodes-per-group. */
  nodeLimitRefusals: Counter;
  /** Nodes removed after --node-idle-expiry without a registration or renewal. */
  nodesPruned: Counter;
  /** 1 while rks's own Vault login works. */
  sessionUp: Gauge;
  /** 1 while /readyz answers 200. */
  ready: Gauge;
  secretExpiry: Gauge<'fqdn'>;
  secretsExpiring: Gauge<'within'>;
  expiryPass: Gauge;
  /** Managed secrets by issuer and renewal state, as of the last expiry pass. */
  managedSecrets: Gauge<'issuer' | 'state'>;
  acmeNextSlot: Gauge<'issuer'>;
  acmeQueueThrough: Gauge<'issuer'>;
  managedRenewals: Counter<'issuer' | 'result'>;
  acmeOrders: Counter<'issuer' | 'result'>;
}

/** One registry per app, so several apps (tests) never share counters. */
export function createMetrics(registry = new Registry(), withDefaults = true): HttpMetrics {
  if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'rks_' });
  return {
    registry,
    requests: new Counter({
      name: 'rks_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'rks_http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    nodeLimitRefusals: new Counter({
      name: 'rks_node_limit_refusals_total',
      help: 'Registrations of new nodes refused because their group has --max-nodes-per-group nodes',
      registers: [registry],
    }),
    nodesPruned: new Counter({
      name: 'rks_nodes_pruned_total',
      help: 'Nodes removed (tokens revoked, role and record deleted) after --node-idle-expiry without being seen',
      registers: [registry],
    }),
    sessionUp: new Gauge({ name: 'rks_vault_session_up', help: '1 while rks\'s own Vault login works, 0 after it failed', registers: [registry] }),
    secretExpiry: new Gauge({
      name: 'rks_secret_expiry_timestamp_seconds',
      help: 'When a secret\'s certificate expires (the soonest-expiring secrets only, up to --expiry-metric-limit series)',
      labelNames: ['fqdn'],
      registers: [registry],
    }),
    secretsExpiring: new Gauge({
      name: 'rks_secrets_expiring',
      help: 'Secrets whose certificate expires within 7d or 30d, or has expired',
      labelNames: ['within'],
      registers: [registry],
    }),
    managedSecrets: new Gauge({
      name: 'rks_managed_secrets',
      help: 'Managed secrets by issuer and renewal state, as of the last expiry pass: failing (the last attempt failed), queued (waiting for a slot of the ACME issuer\'s order budget), pending (no certificate yet), due (being renewed), scheduled',
      labelNames: ['issuer', 'state'],
      registers: [registry],
    }),
    acmeNextSlot: new Gauge({
      name: 'rks_acme_next_slot_timestamp_seconds',
      help: 'When an ACME issuer\'s next order may be placed (its order budget, or a pause its CA asked for), as of the last expiry pass',
      labelNames: ['issuer'],
      registers: [registry],
    }),
    acmeQueueThrough: new Gauge({
      name: 'rks_acme_queue_through_timestamp_seconds',
      help: 'When the orders queued at an ACME issuer will all have been placed at its budget (now when none wait), as of the last expiry pass',
      labelNames: ['issuer'],
      registers: [registry],
    }),
    managedRenewals: new Counter({
      name: 'rks_managed_renewals_total',
      help: 'Certificates of managed secrets obtained by this rks (the first included), by issuer and result (renewed, failed; copies_failed: stored, but not every group\'s copy was updated: retried without a new order)',
      labelNames: ['issuer', 'result'],
      registers: [registry],
    }),
    acmeOrders: new Counter({
      name: 'rks_acme_orders_total',
      help: 'ACME orders placed by this rks, by issuer and result (issued, failed)',
      labelNames: ['issuer', 'result'],
      registers: [registry],
    }),
    expiryPass: new Gauge({ name: 'rks_secret_expiry_check_timestamp_seconds', help: 'When the last certificate expiry check succeeded', registers: [registry] }),
    ready: new Gauge({ name: 'rks_ready', help: '1 when the last readiness check passed (what /readyz answers)', registers: [registry] }),
  };
}

import { VERSION } from '../paths';
import type { Registry } from 'prom-client';
import type { Handlers } from '../http/dispatch';
import type { Readiness } from '../vault/readiness';

/** Liveness, readiness and metrics: unauthenticated, for orchestrators, load balancers and Prometheus. */
export function opsRoutes(readiness: Readiness, registry: Registry): Handlers {
  return {
    // The process answers: nothing else is asked, so a Vault outage never gets rks restarted.
    health: async (_req, res) => {
      res.status(200).json({ status: 'ok' });
    },
    ready: async (_req, res) => {
      const r = await readiness.check();
      if (!r.ready) res.set('Retry-After', '1');
      res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'unavailable', reasons: r.reasons, vault: r.vault, version: VERSION });
    },
    metrics: async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    },
  };
}

import type { Registry } from 'prom-client';
import type { Handlers } from '../http/dispatch';
import type { VaultClient } from '../vault/client';

/** Health and metrics: unauthenticated, for load balancers and Prometheus. */
export function opsRoutes(vault: VaultClient, registry: Registry): Handlers {
  return {
    health: async (_req, res) => {
      const v = await vault.health();
      const ok = v.reachable && v.initialized === true && v.sealed === false;
      res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', vault: v });
    },
    metrics: async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    },
  };
}

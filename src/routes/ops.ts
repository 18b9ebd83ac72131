import { Router } from 'express';
import type { Registry } from 'prom-client';
import type { VaultClient } from '../vault/client';

/** Health and metrics: unauthenticated, for load balancers and Prometheus. */
export function opsRouter(vault: VaultClient, registry: Registry): Router {
  const r = Router();
  r.get('/healthz', async (_req, res) => {
    const v = await vault.health();
    const ok = v.reachable && v.initialized === true && v.sealed === false;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', vault: v });
  });
  r.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return r;
}

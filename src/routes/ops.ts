import { VERSION } from '../paths';
import type { Registry } from 'prom-client';
import type { Handlers } from '../http/dispatch';
import type { AdminService } from '../admin/service';
import type { Readiness } from '../vault/readiness';

/** Liveness, readiness and metrics: unauthenticated, for orchestrators, load balancers and Prometheus. */
export function opsRoutes(readiness: Readiness, registry: Registry, admin: Pick<AdminService, 'isAdministrator'>): Handlers {
  return {
    // The process answers: nothing else is asked, so a Vault outage never gets rks restarted.
    health: async (_req, res) => {
      res.status(200).json({ status: 'ok' });
    },
    // Which Vault addresses rks knows and their states are the operator's business: an
    // administrator's token shows them; strangers (load balancers) get the verdict and its reasons.
    ready: async (_req, res, token) => {
      const r = await readiness.check();
      if (!r.ready) res.set('Retry-After', '1');
      const status = r.ready ? 'ready' : 'unavailable';
      if (await admin.isAdministrator(token)) return void res.status(r.ready ? 200 : 503).json({ status, reasons: r.reasons, vault: r.vault, version: VERSION });
      res.status(r.ready ? 200 : 503).json({ status, reasons: r.publicReasons, version: VERSION });
    },
    metrics: async (_req, res) => {
      res.type(registry.contentType).send(await registry.metrics());
    },
  };
}

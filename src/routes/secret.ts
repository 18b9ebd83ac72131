import type { RenewalStatus } from '../secrets/catalog';
import type { Handlers } from '../http/dispatch';
import type { Inventory } from '../secrets/inventory';
import type { ManagedInput, ManagedSecrets } from '../managed/service';
import type { PushOutcome, SecretService } from '../secrets/service';
import type { SecretData } from '../records/secrets';

/** A push answers with its warnings, or with nothing when there are none (as it always did). */
function pushed(res: Parameters<Handlers[string]>[1], status: number, outcome: PushOutcome): void {
  if (outcome.warnings.length) res.status(status).json(outcome);
  else res.status(status).end();
}

/** The secret surface: TLS material by name, and the inventory of every secret. */
export function secretRoutes(secrets: SecretService, inventory: Inventory, managed: ManagedSecrets): Handlers {
  return {
    createManagedSecret: async (req, res, token) => {
      const { state, entry } = await managed.create(token, req.params.fqdn, req.body as ManagedInput);
      res.status(state === 'issued' ? 201 : 202).json(await inventory.secret(token, req.params.fqdn, entry));
    },
    rollbackSecret: async (req, res, token) => {
      await secrets.rollback(token, req.params.fqdn);
      res.status(200).json(await inventory.secret(token, req.params.fqdn));
    },
    getSecret: async (req, res, token) => {
      res.status(200).json(await secrets.get(token, req.params.fqdn));
    },
    createSecret: async (req, res, token) => {
      pushed(res, 201, await secrets.create(token, req.params.fqdn, (req.body as { data: SecretData }).data));
    },
    updateSecret: async (req, res, token) => {
      pushed(res, 200, await secrets.update(token, req.params.fqdn, (req.body as { data: SecretData }).data));
    },
    deleteSecret: async (req, res, token) => {
      await secrets.delete(token, req.params.fqdn);
      res.status(204).end();
    },
    listSecretGroups: async (req, res, token) => {
      res.status(200).json(await secrets.groups(token, req.params.fqdn));
    },
    getSecretInfo: async (req, res, token) => {
      res.status(200).json(await inventory.secret(token, req.params.fqdn));
    },
    listSecrets: async (req, res, token) => {
      const q = req.query as { expiring_within?: number; group?: string; renewal?: RenewalStatus; limit?: number; after?: string };
      res.status(200).json(await inventory.secrets(token, { expiringWithin: q.expiring_within, group: q.group, renewal: q.renewal, limit: q.limit ?? 100, after: q.after }));
    },
  };
}

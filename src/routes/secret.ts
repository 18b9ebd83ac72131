import type { Handlers } from '../http/dispatch';
import type { SecretData, SecretService } from '../secrets/service';

/** The secret surface: TLS material by name. */
export function secretRoutes(secrets: SecretService): Handlers {
  return {
    getSecret: async (req, res, token) => {
      res.status(200).json(await secrets.get(token, req.params.fqdn));
    },
    createSecret: async (req, res, token) => {
      await secrets.create(token, req.params.fqdn, (req.body as { data: SecretData }).data);
      res.status(201).end();
    },
    updateSecret: async (req, res, token) => {
      await secrets.update(token, req.params.fqdn, (req.body as { data: SecretData }).data);
      res.status(200).end();
    },
    deleteSecret: async (req, res, token) => {
      await secrets.delete(token, req.params.fqdn);
      res.status(204).end();
    },
    listSecretGroups: async (req, res, token) => {
      res.status(200).json(await secrets.groups(token, req.params.fqdn));
    },
  };
}

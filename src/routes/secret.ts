import { Router } from 'express';
import type { SecretData, SecretService } from '../secrets/service';
import { vaultToken } from '../http/guards';

export function secretRouter(secrets: SecretService): Router {
  const r = Router();
  const path = '/rks/v1/secret/:fqdn';

  r.get(path, async (req, res) => {
    res.status(200).json(await secrets.get(vaultToken(req), req.params.fqdn));
  });
  r.post(path, async (req, res) => {
    await secrets.create(vaultToken(req), req.params.fqdn, (req.body as { data: SecretData }).data);
    res.status(201).end();
  });
  r.put(path, async (req, res) => {
    await secrets.update(vaultToken(req), req.params.fqdn, (req.body as { data: SecretData }).data);
    res.status(200).end();
  });
  r.delete(path, async (req, res) => {
    await secrets.delete(vaultToken(req), req.params.fqdn);
    res.status(204).end();
  });
  r.get(`${path}/groups`, async (req, res) => {
    res.status(200).json(await secrets.groups(vaultToken(req), req.params.fqdn));
  });
  return r;
}

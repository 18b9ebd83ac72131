import { RequestHandler, Router } from 'express';
import type { GroupRegInfo, GroupService } from '../groups/service';
import { vaultToken } from '../http/guards';

export function groupRouter(groups: GroupService): Router {
  const r = Router();
  const group = '/rks/v1/group/:group';

  r.post(group, async (req, res) => {
    const groupToken = await groups.create(vaultToken(req), req.params.group, req.body as GroupRegInfo);
    req.log.info({ group: req.params.group.toLowerCase() }, 'group created');
    res.status(201).json({ groupToken });
  });
  const read: RequestHandler<{ group: string }> = async (req, res) => {
    res.status(200).json(await groups.get(vaultToken(req), req.params.group));
  };
  r.get(group, read);
  r.get(`${group}/config`, read);
  r.put(group, async (req, res) => {
    res.status(200).json(await groups.update(vaultToken(req), req.params.group, req.body as GroupRegInfo));
  });
  r.delete(group, async (req, res) => {
    await groups.delete(vaultToken(req), req.params.group);
    req.log.info({ group: req.params.group.toLowerCase() }, 'group deleted');
    res.status(204).end();
  });

  r.get(`${group}/grouptoken`, async (req, res) => {
    res.status(200).json({ groupToken: await groups.groupToken(vaultToken(req), req.params.group) });
  });
  r.put(`${group}/grouptoken`, async (req, res) => {
    const groupToken = await groups.rotateGroupToken(vaultToken(req), req.params.group);
    req.log.info({ group: req.params.group.toLowerCase() }, 'group token rotated');
    res.status(200).json({ groupToken });
  });

  r.get(`${group}/secrets`, async (req, res) => {
    res.status(200).json(await groups.secrets(vaultToken(req), req.params.group));
  });
  r.post(`${group}/secrets/:fqdn`, async (req, res) => {
    await groups.associate(vaultToken(req), req.params.group, req.params.fqdn);
    res.status(201).end();
  });
  r.delete(`${group}/secrets/:fqdn`, async (req, res) => {
    await groups.dissociate(vaultToken(req), req.params.group, req.params.fqdn);
    res.status(204).end();
  });

  r.delete(`${group}/nodes/:nodeId`, async (req, res) => {
    await groups.revokeNode(vaultToken(req), req.params.group, req.params.nodeId);
    req.log.info({ group: req.params.group.toLowerCase(), node: req.params.nodeId.toLowerCase() }, 'node revoked');
    res.status(204).end();
  });
  return r;
}

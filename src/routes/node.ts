import { Router } from 'express';
import { vaultToken } from '../http/guards';
import type { NodeService } from '../nodes/service';

export function nodeRouter(nodes: NodeService): Router {
  const r = Router();
  r.post('/rks/v1/node', async (req, res) => {
    const nodeId = req.get('X-LCDN-nodeId') ?? '';
    const answer = await nodes.register(vaultToken(req), nodeId);
    req.log.info({ node: nodeId.toLowerCase() }, 'node registered');
    res.status(201).json(answer);
  });
  r.post('/rks/v1/auth/token/renew-self', async (req, res) => {
    res.status(200).json(await nodes.renewSelf(vaultToken(req)));
  });
  return r;
}

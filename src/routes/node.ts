import type { Handlers } from '../http/dispatch';
import type { NodeService } from '../nodes/service';

/** The node surface: registration with a group token, renewal of a node or group token. */
export function nodeRoutes(nodes: NodeService): Handlers {
  return {
    registerNode: async (req, res, token) => {
      const nodeId = req.get('X-LCDN-nodeId') ?? '';
      const answer = await nodes.register(token, nodeId);
      req.log.info({ node: nodeId.toLowerCase() }, 'node registered');
      res.status(201).json(answer);
    },
    nodeAccess: async (req, res, token) => {
      const { etag, ...access } = await nodes.access(token, req.get('If-None-Match'), (req.query as { changes?: boolean }).changes === true);
      res.set('ETag', etag);
      // The list the edge holds: no body, whatever the group's size.
      if (!access.secrets && !access.changes) return void res.status(304).end();
      res.status(200).json(access);
    },
    renewSelf: async (_req, res, token) => {
      res.status(200).json(await nodes.renewSelf(token));
    },
  };
}

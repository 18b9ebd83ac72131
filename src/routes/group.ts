import type { GroupService } from '../groups/service';
import type { Handler, Handlers } from '../http/dispatch';
import type { Inventory } from '../secrets/inventory';
import type { GroupRegInfo } from '../records/groups';

/** The group surface: groups, their tokens, their secrets and their nodes. */
export function groupRoutes(groups: GroupService, inventory: Inventory): Handlers {
  const read: Handler = async (req, res, token) => {
    res.status(200).json(await groups.get(token, req.params.group));
  };
  return {
    listGroups: async (req, res, token) => {
      const q = req.query as { limit?: number; after?: string };
      res.status(200).json(await inventory.groups(token, { limit: q.limit ?? 100, after: q.after }));
    },
    listNodes: async (req, res, token) => {
      const q = req.query as { limit?: number; after?: string };
      res.status(200).json(await inventory.nodes(token, req.params.group, { limit: q.limit ?? 100, after: q.after }));
    },
    createGroup: async (req, res, token) => {
      const groupToken = await groups.create(token, req.params.group, req.body as GroupRegInfo);
      req.log.info({ group: req.params.group.toLowerCase() }, 'group created');
      res.status(201).json({ groupToken });
    },
    getGroup: read,
    getGroupConfig: read,
    updateGroup: async (req, res, token) => {
      res.status(200).json(await groups.update(token, req.params.group, req.body as GroupRegInfo));
    },
    deleteGroup: async (req, res, token) => {
      await groups.delete(token, req.params.group);
      req.log.info({ group: req.params.group.toLowerCase() }, 'group deleted');
      res.status(204).end();
    },
    getGroupToken: async (req, res, token) => {
      res.status(200).json({ groupToken: await groups.groupToken(token, req.params.group) });
    },
    rotateGroupToken: async (req, res, token) => {
      const groupToken = await groups.rotateGroupToken(token, req.params.group);
      req.log.info({ group: req.params.group.toLowerCase() }, 'group token rotated');
      res.status(200).json({ groupToken });
    },
    listGroupSecrets: async (req, res, token) => {
      res.status(200).json(await groups.secrets(token, req.params.group));
    },
    associateSecret: async (req, res, token) => {
      await groups.associate(token, req.params.group, req.params.fqdn);
      res.status(201).end();
    },
    dissociateSecret: async (req, res, token) => {
      await groups.dissociate(token, req.params.group, req.params.fqdn);
      res.status(204).end();
    },
    allowNode: async (req, res, token) => {
      await groups.allowNode(token, req.params.group, req.params.nodeId);
      res.status(204).end();
    },
    revokeNode: async (req, res, token) => {
      await groups.revokeNode(token, req.params.group, req.params.nodeId);
      req.log.info({ group: req.params.group.toLowerCase(), node: req.params.nodeId.toLowerCase() }, 'node revoked');
      res.status(204).end();
    },
  };
}

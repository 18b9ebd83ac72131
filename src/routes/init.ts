import { Router } from 'express';
import type { InitService } from '../init/service';
import { vaultToken } from '../http/guards';

export function initRouter(init: InitService, onInitialised?: () => void): Router {
  const r = Router();
  r.post('/rks/v1/init', async (req, res) => {
    await init.init(vaultToken(req));
    req.log.info('rks initialised');
    onInitialised?.();
    res.status(201).end();
  });
  return r;
}

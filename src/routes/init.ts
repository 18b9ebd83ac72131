import { Router } from 'express';
import type { InitService } from '../init/service';
import { vaultToken } from '../http/guards';

export function initRouter(init: InitService, onInitialised?: () => void): Router {
  const r = Router();
  r.post('/rks/v1/init', async (req, res) => {
    const outcome = await init.init(vaultToken(req));
    onInitialised?.();
    if ('upgraded' in outcome) {
      req.log.info({ upgraded: outcome.upgraded }, 'rks brought up to date');
      res.status(200).json(outcome);
      return;
    }
    req.log.info('rks initialised');
    res.status(201).end();
  });
  return r;
}

import type { Handlers } from '../http/dispatch';
import type { InitService } from '../init/service';

/** The init surface: preparing Vault for rks, or bringing it up to date. */
export function initRoutes(init: InitService, onInitialised?: () => void): Handlers {
  return {
    init: async (req, res, token) => {
      const outcome = await init.init(token);
      onInitialised?.();
      if ('upgraded' in outcome) {
        req.log.info({ upgraded: outcome.upgraded }, 'rks brought up to date');
        res.status(200).json(outcome);
        return;
      }
      req.log.info('rks initialised');
      res.status(201).end();
    },
  };
}

import type { ChallengeBoard } from '../acme/challenges';
import type { AcmeIssuerInput, AcmeIssuers } from '../acme/issuers';
import type { OrderBudget, OrderPacing } from '../acme/pacing';
import type { Handlers } from '../http/dispatch';
import type { Inventory } from '../secrets/inventory';

/** The ACME surface: issuers (admin) with where their orders stand, and the HTTP-01 answers edges serve (node). */
export function acmeRoutes(issuers: AcmeIssuers, challenges: ChallengeBoard, pacing: OrderPacing, inventory: Inventory): Handlers {
  return {
    listAcmeIssuers: async (_req, res, token) => {
      res.status(200).json(await issuers.list(token));
    },
    createAcmeIssuer: async (req, res, token) => {
      res.status(201).json(await issuers.create(token, req.params.issuer, req.body as AcmeIssuerInput));
    },
    getAcmeIssuer: async (req, res, token) => {
      const issuer = await issuers.get(token, req.params.issuer);
      const [{ budget: _budget, ...pace }, { counts, failures }] = await Promise.all([
        pacing.view(token, issuer.name, issuer.orderBudget, Math.floor(Date.now() / 1000)),
        inventory.renewals(token, issuer.name),
      ]);
      const { pending, due, queued, failing } = counts;
      res.status(200).json({ ...issuer, queue: { ...pace, pending, due, queued, failing, failures } });
    },
    setAcmeIssuerBudget: async (req, res, token) => {
      res.status(200).json(await issuers.setBudget(token, req.params.issuer, req.body as OrderBudget));
    },
    deactivateAcmeIssuer: async (req, res, token) => {
      res.status(200).json(await issuers.deactivate(token, req.params.issuer));
    },
    listAcmeChallenges: async (_req, res, token) => {
      res.status(200).json({ challenges: await challenges.pending(token) });
    },
    getAcmeChallenge: async (req, res, token) => {
      res.status(200).json(await challenges.answer(token, req.params.token));
    },
  };
}

import type { ChallengeBoard } from '../acme/challenges';
import type { AcmeIssuerInput, AcmeIssuers } from '../acme/issuers';
import type { Handlers } from '../http/dispatch';

/** The ACME surface: issuers (admin), and the HTTP-01 answers edges serve (node). */
export function acmeRoutes(issuers: AcmeIssuers, challenges: ChallengeBoard): Handlers {
  return {
    listAcmeIssuers: async (_req, res, token) => {
      res.status(200).json(await issuers.list(token));
    },
    createAcmeIssuer: async (req, res, token) => {
      res.status(201).json(await issuers.create(token, req.params.issuer, req.body as AcmeIssuerInput));
    },
    getAcmeIssuer: async (req, res, token) => {
      res.status(200).json(await issuers.get(token, req.params.issuer));
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

import { BadRequest, Unauthorized } from '../errors';
import { PskJwt, bearer } from '../pki/psk';
import type { PkiService } from '../pki/service';
import type { Handlers } from '../http/dispatch';
import { sourceKey } from '../address';

const DAY = 86_400;
/** A signed fingerprint header is reused for a while: each new one costs a PBKDF2 derivation. */
const HEADER_REUSE_MS = 10 * 60_000;

/**
 * The trust bootstrap of Resoto / Fix Inventory: GET /ca/cert (unauthenticated; with a PSK
 * the answer's Authorization header carries a JWT of the certificate's fingerprint) and
 * POST /ca/sign (a PEM CSR in, the signed PEM certificate out).
 */
export function caRoutes(pki: PkiService, psk?: PskJwt): Handlers {
  let header: { fingerprint: string; value: string; at: number } | undefined;
  return {
    caCert: async (_req, res) => {
      const ca = await pki.caCertificate();
      if (psk) {
        if (!header || header.fingerprint !== ca.fingerprint || Date.now() - header.at > HEADER_REUSE_MS) {
          const jwt = await psk.sign({ sha256_fingerprint: ca.fingerprint }, 3600);
          header = { fingerprint: ca.fingerprint, value: `Bearer ${jwt}`, at: Date.now() };
        }
        res.set('Authorization', header.value);
      }
      res.type('application/x-pem-file').send(ca.pem);
    },
    // A PEM body, with any Content-Type or none (existing clients); the contract says so.
    caSign: async (req, res, token) => {
      const jwt = bearer(req.get('Authorization'));
      if (jwt) {
        if (!psk) throw new Unauthorized('no PSK is configured on this rks; use an admin X-Vault-Token');
        await psk.verify(jwt, { source: sourceKey(req.ip ?? req.socket.remoteAddress ?? '') });
      } else if (!token) {
        throw new Unauthorized('a PSK JWT (Authorization: Bearer) or an admin X-Vault-Token is required');
      }
      const days = req.query.days === undefined ? 365 : Number(req.query.days);
      if (!Number.isInteger(days) || days < 1 || days > 365) throw new BadRequest('days must be an integer from 1 to 365');
      if (typeof req.body !== 'string' || req.body.trim() === '') throw new BadRequest('body must be a PEM certificate signing request');
      const cert = await pki.sign(req.body, days * DAY, jwt ? undefined : token);
      req.log.info('certificate signed');
      res.status(200).type('application/x-pem-file').send(cert);
    },
  };
}

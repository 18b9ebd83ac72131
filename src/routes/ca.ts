import { PskJwt } from '../pki/psk';
import type { PkiService } from '../pki/service';
import type { Handlers } from '../http/dispatch';

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
          const jwt = await psk.signFingerprint(ca.fingerprint, 3600);
          header = { fingerprint: ca.fingerprint, value: `Bearer ${jwt}`, at: Date.now() };
        }
        res.set('Authorization', header.value);
      }
      res.type('application/x-pem-file').send(ca.pem);
    },
    // A PEM body, with any Content-Type or none (existing clients); the contract says so.
    // Admitted by the contract's security: a verified PSK JWT (rks signs with its own identity)
    // or a Vault token (signs with the caller's rights). The contract bounds `days` and the body.
    caSign: async (req, res, token, scheme) => {
      const days = (req.query.days as number | undefined) ?? 365;
      const cert = await pki.sign(req.body as string, days * DAY, scheme === 'pskJwt' ? undefined : token);
      req.log.info('certificate signed');
      res.status(200).type('application/x-pem-file').send(cert);
    },
  };
}

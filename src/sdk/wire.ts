/**
 * What rks and its nodes say to each other as JSON: the server builds these answers and the
 * SDK reads them, from this one module. Types only: nothing here runs.
 */

/** `POST /rks/v1/node` (a registration) and `POST /rks/v1/auth/token/renew-self`. */
export interface NodeToken {
  nodeToken: string;
  /** Seconds the token lives unless renewed. */
  ttl: number;
}

/** What changed in a node's list since the version it holds. */
export interface ListDelta {
  /** Newly listed (or listed again): fetched when asked for; a held key is fetched again. */
  added: string[];
  /** No longer listed: dropped. */
  removed: string[];
  /** Still listed, with another key: a held key is fetched again and swapped in. */
  replaced: string[];
}

/** `GET /rks/v1/node/secrets`: what a node may read. Its `ETag` names the list's version. */
export interface NodeAccess {
  group: string;
  nodeId: string;
  /** Absent when the edge already holds this list (`If-None-Match`), or is told what changed. */
  secrets?: string[];
  /** To an edge that asked for them (`?changes=true`): what changed since the list it holds. */
  changes?: ListDelta;
  /** To an edge that asked what changed and is too far behind: the keys it holds may have been replaced. */
  stale?: true;
  /** Seconds the node token has left. */
  ttl: number;
}

/** `GET /rks/v1/secret/{fqdn}`: a certificate and its key, for a node of a group that may read it. */
export interface SecretAnswer {
  data: { certificate: string; private_key: string; meta: { ttl: number } };
}

/** `GET /rks/v1/acme/http-01/{token}`: what an edge answers the CA's HTTP-01 request with. */
export interface ChallengeAnswer {
  keyAuthorization: string;
  /** ISO 8601: after this the order has given up on it. */
  expiresAt: string;
}

/** `GET /rks/v1/acme/http-01`: every challenge in progress. */
export interface PendingChallenges {
  challenges: (ChallengeAnswer & { token: string })[];
}

/** Any refusal: its reasons, and a stable code (none from a classic RKS). */
export interface ErrorAnswer {
  errors: string[];
  code?: string;
}

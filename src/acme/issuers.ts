import { X509Certificate } from 'node:crypto';
import { BadGateway, BadRequest, NotFound, alreadyExists } from '../errors';
import { parseName } from '../names';
import { RKS_CA } from '../records/secrets';
import { kvPath } from '../vault/layout';
import type { KvStore } from '../vault/stores';
import { acme, acmeClient } from './client';
import { DEFAULT_ORDER_BUDGET, OrderBudget } from './pacing';


export interface AcmeIssuerInput {
  directory: string;
  contact?: string[];
  externalAccountBinding?: { kid: string; hmacKey: string };
  caBundle?: string;
  termsOfServiceAgreed?: boolean;
  /** New orders this account may place in a window (default: Let's Encrypt's, 300 per 3 hours). */
  orderBudget?: OrderBudget;
}

/** What Vault holds of an issuer: the account key included, the EAB key never (it is used once). */
export interface AcmeIssuerRecord {
  directory: string;
  contact: string[];
  caBundle?: string;
  eabKid?: string;
  accountKey: string;
  accountUrl: string;
  status: 'valid' | 'deactivated';
  createdAt: string;
  deactivatedAt?: string;
  orderBudget?: OrderBudget;
}

/** An issuer as the API shows it: no key. */
export interface AcmeIssuerSummary {
  name: string;
  directory: string;
  contact: string[];
  externalAccountBinding: boolean;
  caBundle: boolean;
  accountUrl: string;
  status: 'valid' | 'deactivated';
  createdAt: string;
  deactivatedAt?: string;
  orderBudget: OrderBudget;
}

/** The budget an issuer's orders keep to: its own, or Let's Encrypt's. */
export const budgetOf = (r: Pick<AcmeIssuerRecord, 'orderBudget'>): OrderBudget =>
  r.orderBudget && Number.isSafeInteger(r.orderBudget.orders) && Number.isSafeInteger(r.orderBudget.windowSeconds) ? r.orderBudget : DEFAULT_ORDER_BUDGET;

const EMAIL = /^[^@\s:,]+@[^@\s:,]+\.[^@\s:,]+$/;

function summary(name: string, r: AcmeIssuerRecord): AcmeIssuerSummary {
  return {
    name,
    directory: r.directory,
    contact: r.contact,
    externalAccountBinding: Boolean(r.eabKid),
    caBundle: Boolean(r.caBundle),
    accountUrl: r.accountUrl,
    status: r.status,
    createdAt: r.createdAt,
    ...(r.deactivatedAt ? { deactivatedAt: r.deactivatedAt } : {}),
    orderBudget: budgetOf(r),
  };
}

/** RFC 8555 wants HTTPS; plain HTTP is accepted on loopback only (a local test CA). */
function checkDirectory(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new BadRequest('directory must be the URL of an ACME directory');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new BadRequest('directory must be an https:// URL');
  if (url.username || url.password) throw new BadRequest('directory must not carry credentials');
  return url.toString();
}

function checkBundle(pem: string | undefined): string | undefined {
  if (pem === undefined) return undefined;
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length) throw new BadRequest('caBundle must hold PEM certificates');
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch {
      throw new BadRequest('caBundle holds a certificate that cannot be read');
    }
  }
  return blocks.join('\n') + '\n';
}

/** A CA's or network failure, for the admin: what the CA said, never a key. */
function upstream(err: unknown, what: string): BadGateway {
  return new BadGateway(`${what}: ${(err as Error).message || 'no answer'}`);
}

/**
 * ACME issuers: a CA's directory, the trust for it, and rks's account there (one per issuer,
 * its key made here and kept in Vault). Managed secrets name an issuer; a staging and a
 * production directory are simply two issuers.
 */
export class AcmeIssuers {
  constructor(
    private readonly kv: KvStore,
    private readonly timeoutMs: number,
  ) {}

  /** Registers an account at the CA (agreeing to its terms) and keeps it. */
  async create(token: string, name: string, input: AcmeIssuerInput): Promise<AcmeIssuerSummary> {
    const issuer = parseName('issuer name', name);
    if (issuer === RKS_CA) throw new BadRequest(`'${RKS_CA}' names rks's own CA`);
    const directory = checkDirectory(input.directory);
    const caBundle = checkBundle(input.caBundle);
    const contact = (input.contact ?? []).map((c) => c.replace(/^mailto:/i, ''));
    for (const c of contact) if (!EMAIL.test(c)) throw new BadRequest(`contact '${c}' is not an e-mail address`);
    if (await this.kv.exists(kvPath.acmeIssuer(issuer), token)) throw alreadyExists(`issuer '${issuer}'`);

    const accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
    const { client } = acmeClient({ directory, caBundle }, { accountKey, externalAccountBinding: input.externalAccountBinding, timeoutMs: this.timeoutMs });
    if (!input.termsOfServiceAgreed) {
      const tos = await client.getTermsOfServiceUrl().catch((err) => {
        throw upstream(err, 'cannot read the ACME directory');
      });
      throw new BadRequest(`set termsOfServiceAgreed to accept the CA's terms of service${tos ? ` (${tos})` : ''}`);
    }
    try {
      await client.createAccount({ termsOfServiceAgreed: true, contact: contact.map((c) => `mailto:${c}`) });
    } catch (err) {
      throw upstream(err, 'registering the account at the CA failed');
    }
    const record: AcmeIssuerRecord = {
      directory,
      contact,
      ...(caBundle ? { caBundle } : {}),
      ...(input.externalAccountBinding ? { eabKid: input.externalAccountBinding.kid } : {}),
      accountKey,
      accountUrl: client.getAccountUrl(),
      status: 'valid',
      createdAt: new Date().toISOString(),
      ...(input.orderBudget ? { orderBudget: { orders: input.orderBudget.orders, windowSeconds: input.orderBudget.windowSeconds } } : {}),
    };
    await this.kv.writeAt(kvPath.acmeIssuer(issuer), record, token, 0, () => alreadyExists(`issuer '${issuer}'`));
    return summary(issuer, record);
  }

  async list(token: string): Promise<AcmeIssuerSummary[]> {
    const names = (await this.kv.list(kvPath.acmeIssuers, token)).filter((n) => !n.endsWith('/')).sort();
    const all = await Promise.all(names.map(async (n) => [n, await this.kv.read<AcmeIssuerRecord>(kvPath.acmeIssuer(n), token)] as const));
    return all.filter(([, r]) => r).map(([n, r]) => summary(n, r!.data));
  }

  async get(token: string, name: string): Promise<AcmeIssuerSummary> {
    const issuer = parseName('issuer name', name);
    return summary(issuer, await this.record(token, issuer));
  }

  /** The issuer with its account key, for ordering (rks's own session). */
  async record(token: string, issuer: string): Promise<AcmeIssuerRecord> {
    const entry = await this.kv.read<AcmeIssuerRecord>(kvPath.acmeIssuer(issuer), token);
    if (!entry) throw new NotFound(`issuer '${issuer}' not found`);
    return entry.data;
  }

  /** Changes the issuer's order budget (every instance keeps to it from its next order). */
  async setBudget(token: string, name: string, budget: OrderBudget): Promise<AcmeIssuerSummary> {
    const issuer = parseName('issuer name', name);
    let updated: AcmeIssuerRecord | null = null;
    await this.kv.update<AcmeIssuerRecord>(kvPath.acmeIssuer(issuer), token, (r) => {
      if (!r) throw new NotFound(`issuer '${issuer}' not found`);
      updated = { ...r, orderBudget: { orders: budget.orders, windowSeconds: budget.windowSeconds } };
      return updated;
    });
    return summary(issuer, updated!);
  }

  /** Deactivates the account at the CA (for good: RFC 8555 §7.3.6); its secrets stop renewing. */
  async deactivate(token: string, name: string): Promise<AcmeIssuerSummary> {
    const issuer = parseName('issuer name', name);
    const entry = await this.kv.read<AcmeIssuerRecord>(kvPath.acmeIssuer(issuer), token);
    if (!entry) throw new NotFound(`issuer '${issuer}' not found`);
    if (entry.data.status === 'deactivated') return summary(issuer, entry.data);
    const r = entry.data;
    const { client } = acmeClient({ directory: r.directory, caBundle: r.caBundle }, { accountKey: r.accountKey, accountUrl: r.accountUrl, timeoutMs: this.timeoutMs });
    try {
      await client.updateAccount({ status: 'deactivated' });
    } catch (err) {
      throw upstream(err, 'the CA did not deactivate the account');
    }
    const next: AcmeIssuerRecord = { ...r, status: 'deactivated', deactivatedAt: new Date().toISOString() };
    await this.kv.write(kvPath.acmeIssuer(issuer), next, token);
    return summary(issuer, next);
  }
}

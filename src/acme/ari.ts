import type { Client } from 'acme-client';
import { retryAfterSeconds } from './client';

/** When the CA suggests renewing a certificate (RFC 9773), in seconds since the epoch. */
export interface RenewalWindow {
  start: number;
  end: number;
  /** Seconds until the CA should be asked again (its Retry-After; 6 h when it gives none). */
  recheckIn: number;
}

const RECHECK = { default: 6 * 3600, min: 60, max: 86400 };

/** RFC 9773 §4.1: base64url(authority key identifier) "." base64url(serial number, DER content). */
export async function ariCertId(leafPem: string): Promise<string | undefined> {
  const { x509 } = await import('../pki/x509');
  const cert = new x509.X509Certificate(leafPem);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) return undefined;
  const hex = cert.serialNumber.length % 2 ? `0${cert.serialNumber}` : cert.serialNumber;
  let serial = Buffer.from(hex, 'hex');
  if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${Buffer.from(aki.keyId, 'hex').toString('base64url')}.${serial.toString('base64url')}`;
}

interface AcmeHttp {
  getDirectory(): Promise<{ renewalInfo?: string }>;
  request(url: string, method: string, o?: object): Promise<{ status: number; data?: any; headers: Record<string, unknown> }>;
}

const httpOf = (client: Client) => (client as unknown as { http: AcmeHttp }).http;

/** Whether the CA serves renewal information (its directory names `renewalInfo`). */
export async function supportsAri(client: Client): Promise<boolean> {
  return Boolean((await httpOf(client).getDirectory()).renewalInfo);
}

/** The CA's suggested renewal window for a certificate, or undefined when it has none. */
export async function renewalWindow(client: Client, leafPem: string, now = Date.now()): Promise<RenewalWindow | undefined> {
  const http = httpOf(client);
  const base = (await http.getDirectory()).renewalInfo;
  const id = base && (await ariCertId(leafPem));
  if (!base || !id) return undefined;
  const resp = await http.request(`${base.replace(/\/$/, '')}/${id}`, 'get');
  const w = resp.status === 200 ? resp.data?.suggestedWindow : undefined;
  const start = Date.parse(w?.start) / 1000;
  const end = Date.parse(w?.end) / 1000;
  if (!Number.isFinite(start) || !Number.isFinite(end) || end < start) return undefined;
  const asked = retryAfterSeconds(resp.headers['retry-after'], now) ?? RECHECK.default;
  return { start: Math.floor(start), end: Math.floor(end), recheckIn: Math.min(RECHECK.max, Math.max(RECHECK.min, asked)) };
}

/** A point chosen uniformly within the window (RFC 9773 §4.2), so renewals spread out. */
export function pickInWindow(w: RenewalWindow, random = Math.random()): number {
  return Math.floor(w.start + random * (w.end - w.start));
}

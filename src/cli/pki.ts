import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { KeyType, newKeyAndCsr } from '../pki/csr';
import { PskJwt, bearer, sha256Fingerprint } from '../pki/psk';
import { CliError, RksHttp } from './http';
import { readSecret } from '../settings';
import { caCertOption, urlOption } from './connection';
import { opt } from './options';
import { positiveInt } from '../settings';

const pskOption = () => opt('--psk <passphrase>', 'pre-shared key of the trust bootstrap', 'RKS_PSK');
const pskFileOption = () => opt('--psk-file <file>', 'file holding the pre-shared key', 'RKS_PSK_FILE');
const list = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** `rks ca cert`: fetch the CA and, given the PSK, check its fingerprint before trusting it. */
export function caCommand(): Command {
  const ca = new Command('ca').description('The rks certificate authority');
  ca.command('cert')
    .description('Fetch the CA certificate; with the PSK, verify its fingerprint first')
    .addOption(urlOption())
    .addOption(caCertOption())
    .addOption(pskOption())
    .addOption(pskFileOption())
    .option('--out <file>', 'write the certificate here (default: standard output)')
    .addHelpText(
      'after',
      `
With the PSK, the fetch does not need to trust rks's TLS certificate yet: rks signs the CA's
SHA-256 fingerprint with the PSK, and the certificate is written only if that signature and
fingerprint check out. Without the PSK, rks's TLS certificate must verify (--ca-cert or the
system CAs).`,
    )
    .option('--json', 'print {certificate, sha256Fingerprint, subject, verified} as JSON, for scripts')
    .action(async (o: { url: string; caCert?: string; psk?: string; pskFile?: string; out?: string; json?: boolean }) => {
      const psk = readSecret(o.psk, o.pskFile, '--psk-file');
      const http = new RksHttp({ url: o.url, caCert: o.caCert, insecure: Boolean(psk) });
      const res = await http.request('GET', '/ca/cert');
      const pem = res.data;
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(pem);
      } catch {
        throw new CliError('rks answered something that is not a certificate');
      }
      const fingerprint = sha256Fingerprint(cert.raw);
      if (psk) {
        const jwt = bearer(String(res.headers['authorization'] ?? ''));
        if (!jwt) throw new CliError('rks sent no signed fingerprint: is a PSK configured on the server?');
        const claims = await new PskJwt(psk).verify(jwt, 'ca-fingerprint').catch((err: Error) => {
          throw new CliError(`the fingerprint signature does not verify with this PSK (${err.message}); not trusting this CA`);
        });
        if (claims.sha256_fingerprint !== fingerprint) {
          throw new CliError('the CA certificate does not match the signed fingerprint; not trusting it');
        }
      }
      const verified = psk ? 'psk' : 'tls';
      if (o.out) fs.writeFileSync(o.out, pem);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ certificate: pem, sha256Fingerprint: fingerprint, subject: cert.subject, verified, ...(o.out ? { file: o.out } : {}) }, null, 2)}\n`);
      } else if (o.out) {
        process.stderr.write(`CA certificate written to ${o.out}\n  subject     ${cert.subject}\n  sha256      ${fingerprint}\n  verified    ${psk ? 'fingerprint signed with the PSK' : 'by TLS'}\n`);
      } else {
        process.stdout.write(pem);
      }
    });
  return ca;
}

interface CreateOptions {
  commonName: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  keyType: KeyType;
  keyBits?: number;
  days: number;
  out: string;
  force?: boolean;
  url: string;
  caCert?: string;
  psk?: string;
  pskFile?: string;
  token?: string;
  json?: boolean;
}

/** `rks certificate create`: a key made here, a CSR signed by rks's CA, both written to disk. */
export function certificateCommand(): Command {
  const certificate = new Command('certificate').description('Certificates from the rks CA');
  certificate
    .command('create')
    .description('Make a key locally and have rks\'s CA sign a certificate for it')
    .requiredOption('--common-name <name>', 'the certificate\'s common name (also the file names)')
    .option('--dns-names <names>', 'comma-separated DNS names', list)
    .option('--ip-addresses <addresses>', 'comma-separated IP addresses', list)
    .addOption(new Option('--key-type <type>', 'key type').choices(['ec', 'rsa']).default('ec'))
    .option('--key-bits <n>', 'RSA: 2048, 3072 (default) or 4096; EC: 256 (default) or 384', positiveInt('--key-bits'))
    .option('--days <n>', 'validity in days (at most 365)', positiveInt('--days'), 365)
    .option('--out <dir>', 'where to write NAME.key and NAME.crt', '.')
    .option('--force', 'overwrite existing files')
    .option('--json', 'print {keyFile, certFile, subject, names, notAfter, issuer} as JSON, for scripts')
    .addOption(urlOption())
    .addOption(caCertOption())
    .addOption(pskOption())
    .addOption(pskFileOption())
    .addOption(opt('--token <token>', 'admin token, instead of the PSK', 'RKS_TOKEN'))
    .action(async (o: CreateOptions) => {
      const bits = o.keyBits;
      if (o.keyType === 'rsa' && bits !== undefined && ![2048, 3072, 4096].includes(bits)) {
        throw new InvalidArgumentError('--key-bits for RSA must be 2048, 3072 or 4096');
      }
      if (o.keyType === 'ec' && bits !== undefined && ![256, 384].includes(bits)) {
        throw new InvalidArgumentError('--key-bits for EC must be 256 or 384');
      }
      const psk = readSecret(o.psk, o.pskFile, '--psk-file');
      if (!psk && !o.token) throw new CliError('give --psk (RKS_PSK) or an admin --token (RKS_TOKEN) to have the CSR signed', 2);
      const base = o.commonName.replace(/[^A-Za-z0-9._-]/g, '_');
      const keyFile = path.join(o.out, `${base}.key`);
      const certFile = path.join(o.out, `${base}.crt`);
      for (const f of [keyFile, certFile]) {
        if (fs.existsSync(f) && !o.force) throw new CliError(`${f} exists; use --force to overwrite it`);
      }

      const { keyPem, csrPem } = await newKeyAndCsr({
        commonName: o.commonName,
        dnsNames: o.dnsNames,
        ipAddresses: o.ipAddresses,
        keyType: o.keyType,
        keyBits: bits,
      });
      const headers: Record<string, string> = { 'Content-Type': 'application/x-pem-file' };
      if (psk) headers.Authorization = `Bearer ${await new PskJwt(psk).signRequest(300)}`;
      else headers['X-Vault-Token'] = o.token!;
      const http = new RksHttp({ url: o.url, caCert: o.caCert });
      const res = await http.request('POST', `/ca/sign?days=${o.days}`, { headers, body: csrPem });

      fs.mkdirSync(o.out, { recursive: true });
      fs.writeFileSync(keyFile, keyPem, { mode: 0o600 });
      fs.chmodSync(keyFile, 0o600);
      fs.writeFileSync(certFile, res.data);
      const cert = new X509Certificate(res.data);
      if (o.json) {
        const summary = { keyFile, certFile, subject: cert.subject, names: cert.subjectAltName ?? '', notAfter: new Date(cert.validTo).toISOString(), issuer: cert.issuer };
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      process.stderr.write(
        `private key  ${keyFile}  (mode 0600, made here, never sent)\ncertificate  ${certFile}\n  subject    ${cert.subject}\n  names      ${cert.subjectAltName ?? '-'}\n  valid to   ${new Date(cert.validTo).toISOString()}\n  issuer     ${cert.issuer}\n`,
      );
    });
  return certificate;
}

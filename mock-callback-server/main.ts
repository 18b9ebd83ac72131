import fs from 'node:fs';
import { Command, Option } from 'commander';
import { selfSignedCertificate } from '../src/pki/selfsigned';
import { MockCallbackServer, startMockCallbackServer } from './server';

/** `node dist/mock-callback-server/main.js --port 8443`: a group manager stand-in. */
export async function main(argv = process.argv): Promise<MockCallbackServer> {
  const cmd = new Command('mock-callback-server')
    .description('A group-manager stand-in for rks callback verification (HTTPS, for tests and demos)')
    .addOption(new Option('--port <n>', 'port').env('RKS_MOCK_PORT').default('8443'))
    .addOption(new Option('--host <addr>', 'address to listen on').env('RKS_MOCK_HOST').default('127.0.0.1'))
    .addOption(new Option('--cert <file>', 'PEM certificate (default: a new self-signed one)').env('RKS_MOCK_CERT'))
    .addOption(new Option('--key <file>', 'PEM key of --cert').env('RKS_MOCK_KEY'))
    .addOption(new Option('--cert-out <file>', 'write the self-signed certificate here for rks --callback-ca-file').env('RKS_MOCK_CERT_OUT'))
    .addOption(new Option('--client-id <id>', 'the one OAuth client id that gets tokens').env('RKS_MOCK_CLIENT_ID').default('rks'))
    .addOption(new Option('--client-secret <secret>', 'its secret').env('RKS_MOCK_CLIENT_SECRET').default('rks-secret'))
    .addOption(new Option('--allow <ids>', 'comma-separated node ids allowed from the start').env('RKS_MOCK_ALLOW').default(''))
    .addHelpText(
      'after',
      `
Endpoints:
  POST   /api/identity/oauth/token   client credentials (Basic auth + query parameters)
  GET    /callback/nodes/{id}        Bearer; 200 {entityId} when allowed, else 403
  PUT    /callback/nodes/{id}        allow a node (POST too)
  DELETE /callback/nodes/{id}        disallow it
  GET    /callback/nodes             list allowed nodes
  PUT    /mock/behaviour             {callbackStatus, oauthStatus, delayMs, redirectTo, trickleMs, answerBytes} to simulate failures`,
    )
    .parse(argv);
  const o = cmd.opts();
  let cert: string | Buffer;
  let key: string | Buffer;
  if (o.cert && o.key) {
    cert = fs.readFileSync(o.cert);
    key = fs.readFileSync(o.key);
  } else {
    ({ cert, key } = await selfSignedCertificate('mock-callback-server'));
    if (o.certOut) fs.writeFileSync(o.certOut, cert);
  }
  const mock = await startMockCallbackServer({
    cert,
    key,
    port: Number(o.port),
    host: o.host,
    clientId: o.clientId,
    clientSecret: o.clientSecret,
    allowed: String(o.allow).split(',').filter(Boolean),
  });
  process.stdout.write(`mock callback server on ${mock.url}\n  oauthURL    ${mock.oauthURL}\n  callbackURL ${mock.callbackURL}\n`);
  return mock;
}

if (require.main === module) {
  main()
    .then((mock) => {
      const stop = () => void mock.close().then(() => process.exit(0));
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    })
    .catch((err: Error) => {
    process.stderr.write(`mock-callback-server: ${err.message}\n`);
    process.exit(1);
  });
}

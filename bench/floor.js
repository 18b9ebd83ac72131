// Node's floor for GET /rks/v1/secret/{fqdn}: its HTTP server and one pooled undici request to
// Vault per request, nothing else (no validation, headers, logs or metrics). make bench runs it
// beside rks --no-tls, to show how much of rks's cost is Node's own.
const http = require('node:http');
const { Pool } = require('undici');

const [vaultAddr, vaultPath, port] = process.argv.slice(2);
const pool = new Pool(vaultAddr, { connections: 128, pipelining: 1 });
http
  .createServer(async (req, res) => {
    const answer = await pool.request({ path: vaultPath, method: 'GET', headers: { 'X-Vault-Token': req.headers['x-vault-token'] } });
    const d = JSON.parse(await answer.body.text()).data.data;
    const body = JSON.stringify({ data: { certificate: d.certificate, private_key: d.private_key, meta: { ttl: 300 } } });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  })
  .listen(Number(port), '127.0.0.1');

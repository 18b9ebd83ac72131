import fs from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import helmet from 'helmet';


const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rks API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.yaml', dom_id: '#ui', deepLinking: true });\n`;

/** The contract as YAML and JSON, and a browsable copy at /docs, all served offline. */
export function docsRouter(specFile: string): Router {
  const r = Router();
  // A page with scripts and styles: helmet's headers for pages (its CSP allows rks's own assets).
  r.use(['/docs', '/openapi.yaml', '/openapi.json'], helmet());
  const yaml = fs.readFileSync(specFile, 'utf8');
  let json: string | undefined;
  // swagger-ui-dist is a plain asset folder; resolve it without importing its entry point.
  const assets = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  r.get('/openapi.yaml', (_req, res) => res.type('application/yaml').send(yaml));
  r.get('/openapi.json', async (_req, res) => {
    json ??= JSON.stringify((await import('yaml')).parse(yaml));
    res.type('application/json').send(json);
  });
  r.get(['/docs', '/docs/'], (_req, res) => res.type('html').send(PAGE));
  r.get('/docs/init.js', (_req, res) => res.type('application/javascript').send(INIT));
  r.use('/docs/assets', express.static(assets, { index: false, maxAge: '1h' }));
  return r;
}

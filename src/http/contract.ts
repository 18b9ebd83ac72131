import fs from 'node:fs';
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { parse } from 'yaml';

/** The contract's security schemes, each enforced by the dispatcher. */
export const SCHEMES = ['vaultToken', 'pskJwt'] as const;
export type Scheme = (typeof SCHEMES)[number];
/** What an operation's body is, from its `requestBody` content types. */
export type BodyKind = 'none' | 'json' | 'text';

export interface ValidationItem {
  /** Where: `params.fqdn`, `headers.x-lcdn-nodeid`, `query.days`, `body.data.meta.ttl`. */
  path: string;
  keyword: string;
  message: string;
}

export interface Operation {
  id: string;
  method: string;
  /** The path as the contract writes it; also the metrics label. */
  path: string;
  /**
   * Who may call it: the contract's `security`, alternatives of schemes that must all be
   * present; none at all for anyone.
   */
  security: Scheme[][];
  /** Reachable without a PSK JWT under --require-psk (`x-rks-psk-exempt`). */
  pskExempt: boolean;
  body: BodyKind;
  bodyRequired: boolean;
  /** Largest body (`x-rks-body-limit`), e.g. '16kb'; the app's default otherwise. */
  bodyLimit?: string;
  /** Checks path parameters (decoded), query, headers and body; answers what is wrong. */
  check(part: 'params' | 'query' | 'headers' | 'body', value: unknown): ValidationItem[];
  /** The schema of a JSON answer with this status, if the contract gives one. */
  checkAnswer(status: number, body: unknown): ValidationItem[];
}

export type Match = { op: Operation; params: Record<string, string> } | { allow: string } | null;

interface Route {
  regex: RegExp | null;
  names: string[];
  byMethod: Map<string, Operation>;
  allow: string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
type Json = Record<string, any>;

/**
 * The contract (openapi/rks.yaml) compiled once at start: each path's pattern, each
 * operation's validators (ajv), authentication, body kind and limits. A request is matched
 * by a map lookup for fixed paths and a handful of precompiled patterns for the others,
 * never by compiling anything per request.
 */
export class Contract {
  private readonly fixed = new Map<string, Route>();
  private readonly patterns: Route[] = [];
  readonly operations: Operation[] = [];

  private constructor(spec: Json) {
    const ajv = new Ajv({ strict: false, allErrors: false });
    const coercing = new Ajv({ strict: false, allErrors: false, coerceTypes: true });
    for (const a of [ajv, coercing]) a.addSchema(spec, 'rks');

    for (const [path, item] of Object.entries<Json>(spec.paths)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const route: Route = {
        regex: names.length ? new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '([^/]+)')}$`) : null,
        names,
        byMethod: new Map(),
        allow: '',
      };
      for (const method of METHODS.filter((m) => item[m])) {
        const op = compileOperation({ spec, ajv, coercing }, path, item, method);
        route.byMethod.set(op.method, op);
        this.operations.push(op);
      }
      route.allow = [...route.byMethod.keys()].join(', ');
      if (route.regex) this.patterns.push(route);
      else this.fixed.set(path, route);
    }
  }

  static load(file: string): Contract {
    return new Contract(parse(fs.readFileSync(file, 'utf8')));
  }

  /** The operation for a request, 405's Allow list when the path has others, or null. */
  match(method: string, path: string): Match {
    let route = this.fixed.get(path);
    let values: string[] = [];
    if (!route) {
      for (const r of this.patterns) {
        const m = r.regex!.exec(path);
        if (m) {
          route = r;
          values = m.slice(1);
          break;
        }
      }
    }
    if (!route) return null;
    const op = route.byMethod.get(method === 'HEAD' ? 'GET' : method);
    if (!op) return { allow: route.allow };
    const params: Record<string, string> = {};
    route.names.forEach((name, i) => (params[name] = values[i]));
    return { op, params };
  }
}

/** Follows a local JSON pointer (`#/components/schemas/Name`). */
function pointer(spec: Json, ref: string): Json {
  return ref
    .replace(/^#\//, '')
    .split('/')
    .reduce((node: Json, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
}

/** A schema whose local references point into the contract registered with ajv as 'rks'. */
function refs(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(refs);
  if (!schema || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#') ? `rks${v}` : refs(v)]),
  );
}

function items(part: string, errors: ErrorObject[]): ValidationItem[] {
  return errors.map((e) => {
    const where = `${part}${e.instancePath}`.replace(/\//g, '.');
    const missing = e.keyword === 'required' ? `.${String(e.params.missingProperty)}` : '';
    return { path: `${where}${missing}`, keyword: e.keyword, message: e.message ?? 'is invalid' };
  });
}

/** One operation of the contract, its validators compiled (`coercing` for the query string). */
function compileOperation(c: { spec: Json; ajv: Ajv; coercing: Ajv }, path: string, item: Json, method: string): Operation {
  const { spec, ajv, coercing } = c;
  const resolve = (x: Json): Json => (x?.$ref ? resolve(pointer(spec, x.$ref)) : x);
  const o: Json = item[method];
  const parameters: Json[] = [...(item.parameters ?? []), ...(o.parameters ?? [])].map(resolve);
  const body = o.requestBody ? resolve(o.requestBody) : undefined;
  const types = Object.keys(body?.content ?? {});
  const security: Json[] = o.security ?? spec.security ?? [];
  const alternatives = security.map((s) => Object.keys(s));
  for (const name of alternatives.flat()) {
    if (!(SCHEMES as readonly string[]).includes(name)) throw new Error(`${o.operationId}: security scheme '${name}' is not one rks enforces`);
  }
  const compile = (a: Ajv, schema: Json) => a.compile(refs(schema));
  const inParams = (where: string, extra: Json) => {
    const ps = parameters.filter((p) => p.in === where);
    const key = (p: Json) => (where === 'header' ? String(p.name).toLowerCase() : p.name);
    return {
      type: 'object',
      properties: Object.fromEntries(ps.map((p) => [key(p), p.schema])),
      required: ps.filter((p) => p.required).map(key),
      ...extra,
    };
  };
  const validators = {
    params: compile(ajv, inParams('path', {})),
    query: compile(coercing, inParams('query', { additionalProperties: false })),
    headers: compile(ajv, inParams('header', {})),
    // A JSON body against its schema; a text body (PEM) against its first content type's.
    body: types.length ? compile(ajv, body!.content[types.includes('application/json') ? 'application/json' : types[0]!].schema) : undefined,
  };
  const answers = new Map<string, ValidateFunction | undefined>();
  for (const [status, r] of Object.entries<Json>(o.responses ?? {})) {
    const schema = resolve(r).content?.['application/json']?.schema;
    answers.set(status, schema ? compile(ajv, schema) : undefined);
  }
  const op: Operation = {
    id: o.operationId,
    method: method.toUpperCase(),
    path,
    security: alternatives as Scheme[][],
    pskExempt: o['x-rks-psk-exempt'] === true,
    body: !body ? 'none' : types.includes('application/json') ? 'json' : 'text',
    bodyRequired: Boolean(body?.required),
    bodyLimit: o['x-rks-body-limit'],
    check(part, value) {
      const v = part === 'body' ? validators.body : validators[part];
      return !v || v(value) ? [] : items(part, v.errors ?? []);
    },
    checkAnswer(status, value) {
      const v = answers.has(String(status)) ? answers.get(String(status)) : answers.get('default');
      return !v || v(value) ? [] : items('answer', v.errors ?? []);
    },
  };
  return op;
}

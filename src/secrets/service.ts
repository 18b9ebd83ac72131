import { Conflict, NotFound } from '../errors';
import { parseFqdn } from '../names';
import { CasMismatch } from '../vault/kv';
import type { KvStore } from '../vault/stores';
import { kvPath } from '../vault/layout';
import { validateTlsMaterial } from './tls';

/** A secret as stored in Vault (`rks/data/<fqdn>`) and as the API carries it under `data`. */
export interface SecretData {
  certificate: string;
  private_key: string;
  meta?: { ttl?: number };
}

export interface Secret {
  data: { certificate: string; private_key: string; meta: { ttl: number } };
}

export class SecretService {
  constructor(
    private readonly kv: KvStore,
    private readonly defaultTtl: number,
  ) {}

  /** The hot path: exactly one Vault read with the caller's token. */
  async get(token: string, name: string): Promise<Secret> {
    const fqdn = parseFqdn(name);
    const entry = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
    if (!entry) throw new NotFound(`secret '${fqdn}' not found`);
    const { certificate, private_key, meta } = entry.data;
    const ttl = Number(meta?.ttl) > 0 ? Number(meta!.ttl) : this.defaultTtl;
    return { data: { certificate, private_key, meta: { ttl } } };
  }

  async create(token: string, name: string, input: SecretData): Promise<void> {
    const fqdn = parseFqdn(name);
    const data = this.validated(fqdn, input);
    try {
      await this.kv.write(kvPath.secret(fqdn), data, token, 0);
    } catch (err) {
      if (err instanceof CasMismatch) throw new Conflict(`secret '${fqdn}' already exists`, 'already_exists');
      throw err;
    }
  }

  async update(token: string, name: string, input: SecretData): Promise<void> {
    const fqdn = parseFqdn(name);
    const data = this.validated(fqdn, input);
    const current = await this.kv.read<SecretData>(kvPath.secret(fqdn), token);
    if (!current) throw new NotFound(`secret '${fqdn}' not found`);
    try {
      // Based on the version just read: a concurrent delete cannot be undone by this write.
      await this.kv.write(kvPath.secret(fqdn), data, token, current.version);
    } catch (err) {
      if (err instanceof CasMismatch) throw new Conflict(`secret '${fqdn}' changed during the update; retry`);
      throw err;
    }
  }

  async delete(token: string, name: string): Promise<void> {
    const fqdn = parseFqdn(name);
    await this.mustExist(token, fqdn);
    const groups = await this.groupsOf(token, fqdn);
    if (groups.length > 0) {
      throw new Conflict(`secret '${fqdn}' is still associated with ${groups.map((g) => `'${g}'`).join(', ')}`, 'still_associated');
    }
    // Destroy every version: an old private key must not outlive its deletion.
    await this.kv.destroy(kvPath.secret(fqdn), token);
    await this.kv.destroy(kvPath.secretGroups(fqdn), token);
  }

  async groups(token: string, name: string): Promise<string[]> {
    const fqdn = parseFqdn(name);
    await this.mustExist(token, fqdn);
    return this.groupsOf(token, fqdn);
  }

  private async groupsOf(token: string, fqdn: string): Promise<string[]> {
    const index = await this.kv.read<{ groups: string[] }>(kvPath.secretGroups(fqdn), token);
    return [...(index?.data.groups ?? [])].sort();
  }

  private async mustExist(token: string, fqdn: string): Promise<void> {
    if (!(await this.kv.exists(kvPath.secret(fqdn), token))) {
      throw new NotFound(`secret '${fqdn}' not found`);
    }
  }

  private validated(fqdn: string, input: SecretData): SecretData {
    const tls = validateTlsMaterial(fqdn, input.certificate, input.private_key);
    const data: SecretData = { certificate: tls.certificate, private_key: tls.privateKey };
    if (input.meta?.ttl !== undefined) data.meta = { ttl: input.meta.ttl };
    return data;
  }
}

import { AppRole } from './approle';
import type { VaultClient } from './client';
import { Kv } from './kv';
import { SERVICE_AUTH_PATH } from './layout';
import { Pki } from './pki';
import type { VaultStores } from './stores';
import { Sys } from './sys';
import { Tokens } from './tokens';

/** The stores over one Vault client: what the rules are given in place of Vault itself. */
export function vaultStores(vault: VaultClient): VaultStores & { setup: Sys; kv: Kv; pki: Pki; tokens: Tokens } {
  return { setup: new Sys(vault), kv: new Kv(vault), pki: new Pki(vault), appRole: new AppRole(vault, SERVICE_AUTH_PATH), tokens: new Tokens(vault) };
}

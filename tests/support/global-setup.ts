import { randomBytes } from 'node:crypto';
import { vaultStores } from '../../src/vault/adapters';
import { InitService } from '../../src/init/service';
import { startVault, vaultClient } from './vault';

/** One OpenBao/Vault dev server for the whole run, with rks initialised on it. */
export default async function globalSetup(): Promise<void> {
  const vault = await startVault();
  (globalThis as { __rksVault?: typeof vault }).__rksVault = vault;
  const admin = { login: 'rks-admin', password: randomBytes(18).toString('base64url') };
  const client = vaultClient(vault.addr);
  await new InitService(vaultStores(client), admin).init(vault.rootToken);
  client.close();
  Object.assign(process.env, {
    RKS_TEST_VAULT_ADDR: vault.addr,
    RKS_TEST_ROOT_TOKEN: vault.rootToken,
    RKS_TEST_ADMIN_LOGIN: admin.login,
    RKS_TEST_ADMIN_PASSWORD: admin.password,
  });
}

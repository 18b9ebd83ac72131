import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Config, resolveConfig } from '../config';
import { SETTINGS, Settings, UsageError, readSecret, settingDefaults } from '../settings';
import { createLogger } from '../log';
import type { MigrationPlan, PlannedToken } from '../migrate/classic';
import { quoted } from '../names';
import { CliError } from './http';
import { opt, optionOf } from './options';
import { saveSecretFile } from './output';

/** Each call to Vault may take this long: a migration lists and rewrites a whole deployment. */
const VAULT_TIMEOUT = 10;

interface MigrateOptions extends Pick<Settings, 'vaultAddr' | 'vaultCaFile' | 'adminLogin' | 'adminPassword' | 'adminPasswordFile'> {
  vaultToken?: string;
  vaultTokenFile?: string;
  apply?: boolean;
  classicStopped?: boolean;
  plan?: string;
  revokeOtherTokens?: boolean;
  tokenDir?: string;
  json?: boolean;
}

const SHOWN_TOKENS = 50;

function tokenLines(tokens: PlannedToken[], why: boolean): string[] {
  const lines = tokens.slice(0, SHOWN_TOKENS).map((t) => `  ${t.accessor}  ${t.path ? quoted(t.path) : '-'}  [${t.policies.map(quoted).join(', ')}]${why ? `  ${t.reason}` : ''}`);
  if (tokens.length > SHOWN_TOKENS) lines.push(`  … and ${tokens.length - SHOWN_TOKENS} more (--json lists them all)`);
  return lines;
}

/**
 * The plan as an administrator reads it: every group's every list entry, and everything that
 * goes. Every string read from Vault is quoted, so what a classic edge wrote cannot pass for
 * the plan's own lines.
 */
function describe(plan: MigrationPlan): string {
  const lines = [`config record: ${plan.config === 'classic' ? "the classic's (destroyed: it holds its admin password)" : plan.config === 'rks' ? "rks's already (an earlier run got this far)" : 'none'}`];
  for (const g of plan.groups) {
    if (g.problem) {
      lines.push(`group ${quoted(g.name)}: NOT TAKEN OVER: ${g.problem}`);
      continue;
    }
    const c = g.callback;
    const callback = c ? `callback ${quoted(c.url)} (OAuth ${quoted(c.oauthURL)}, client ${quoted(c.oauthClientID)})` : 'no callback';
    lines.push(`group ${g.name}: ${g.entries.filter((e) => e.action === 'keep').length} secret(s), ${callback}${g.migrated ? ', already taken over' : ''}`);
    for (const e of g.entries) {
      const name = e.action === 'keep' ? String(e.entry) : quoted(typeof e.entry === 'string' ? e.entry : JSON.stringify(e.entry));
      lines.push(`  ${e.action === 'keep' ? 'keep     ' : e.action === 'duplicate' ? 'duplicate' : 'DROP     '} ${name}${e.reason ? `: ${e.reason}` : ''}`);
    }
  }
  // What a planted association would look like: a secret more than one group reads.
  const readers = new Map<string, string[]>();
  for (const g of plan.groups) for (const e of g.entries) if (e.action === 'keep') readers.set(String(e.entry), [...(readers.get(String(e.entry)) ?? []), g.name]);
  const shared = [...readers].filter(([, gs]) => gs.length > 1);
  lines.push(`secrets more than one group will read: ${shared.length || 'none'}`, ...shared.map(([s, gs]) => `  ${s}: ${gs.join(', ')}`));
  const bad = plan.secrets.filter((s) => s.problem);
  lines.push(`secrets: ${plan.secrets.length}, of which ${bad.length} rks would refuse (kept as they are)${bad.length ? ':' : ''}`);
  for (const s of bad) lines.push(`  ${s.name}: ${s.problem}`);
  lines.push(`token roles to delete, their tokens revoked: ${plan.revoke.roles.length || 'none'}`);
  for (const r of plan.revoke.roles) lines.push(`  ${quoted(r.name)}: ${r.reason}`);
  lines.push(`tokens to revoke (made before the migration): ${plan.revoke.tokens.length || 'none'}`, ...tokenLines(plan.revoke.tokens, true));
  lines.push(`other tokens, left alone (--revoke-other-tokens revokes them too): ${plan.otherTokens.length || 'none'}`, ...tokenLines(plan.otherTokens, false));
  lines.push(`policies to remove: ${plan.remove.policies.map(quoted).join(', ') || 'none'}`);
  if (plan.remove.users.length) lines.push(`userpass users to remove: ${plan.remove.users.map(quoted).join(', ')}`);
  if (plan.remove.records.length) lines.push(`records only rks writes, made before it ran here, to remove: ${plan.remove.records.map(quoted).join(', ')}`);
  if (plan.remove.mounts.length) lines.push(`secrets engines at rks's paths, made before it ran here, to disable (their data goes): ${plan.remove.mounts.map((m) => quoted(`${m}/`)).join(', ')}`);
  if (plan.remove.auths.length) lines.push(`auth methods at rks's paths, made before it ran here, to disable: ${plan.remove.auths.map((a) => quoted(`${a}/`)).join(', ')}`);
  for (const i of plan.remove.identities) lines.push(`identity ${i.kind} ${quoted(i.name)} (${quoted(i.id)}) carries ${i.policies.map(quoted).join(', ')}: removed`);
  if (plan.notes.length) lines.push('notes:', ...plan.notes.map((n) => `  ${n}`));
  if (plan.losses.length) lines.push(`LOSSES: ${plan.losses.length}:`, ...plan.losses.map((l) => `  ${l}`));
  else lines.push('losses: none');
  lines.push(`plan ${plan.digest}: to apply exactly this plan, stop every classic RKS server, then run rks migrate --apply --classic-stopped --plan ${plan.digest}`);
  return lines.join('\n');
}

/** `rks migrate`: take a Vault over from Orange's remote-key-server (dry run unless --apply). */
export function migrateCommand(): Command {
  return new Command('migrate')
    .description('Take a Vault over from a classic remote-key-server deployment (a dry run unless --apply)')
    // The Vault and the administrator as rks serve takes them (the same flags and variables).
    .addOption(optionOf(SETTINGS.vaultAddr))
    .addOption(optionOf(SETTINGS.vaultCaFile))
    .addOption(opt('--vault-token <token>', 'Vault root token (prefer --vault-token-file; else $VAULT_TOKEN)', 'VAULT_TOKEN'))
    .addOption(opt('--vault-token-file <file>', 'file holding the Vault root token', 'RKS_VAULT_TOKEN_FILE'))
    .addOption(optionOf(SETTINGS.adminLogin))
    .addOption(optionOf(SETTINGS.adminPassword))
    .addOption(optionOf(SETTINGS.adminPasswordFile))
    .option('--apply', 'make the changes (without it, only show what would change)')
    .option('--classic-stopped', 'confirm the classic RKS servers are stopped: required with --apply (rks cannot see them from Vault)')
    .option('--plan <digest>', 'with --apply: the plan to apply, as the dry run named it (a Vault that changed since makes another plan, and is refused)')
    .option('--revoke-other-tokens', 'with --apply: revoke every other token too (all but the one this runs with), for a Vault that served the classic alone')
    .option('--token-dir <dir>', 'write each group\'s new token to <dir>/<group>.token (mode 0600) instead of printing it')
    .option('--json', 'print the plan and the result as JSON')
    .addHelpText(
      'after',
      `
The classic keeps its groups, secrets and secret lists in rks/: those stay, rewritten in rks's
shape. Every entry of every group's list is checked by rks's name rules and must name a secret
that exists (the classic's edges could write their group's list); the dry run lists each entry
and what becomes of it. What changes: every token made before the migration that could hold
power after it is revoked (classic group, node and admin tokens, tokens from any role in a
classic group's namespace, tokens carrying rks's policy names), those roles and the classic's
policies go, the classic's config record (which holds its admin password) is destroyed, rks's
init runs, and each group gets rks's node policy and a new group token; nodes register again
with it. A plan that would lose anything (a dropped entry, a group rks cannot take, callback
settings rks refuses) is listed under LOSSES. --apply runs only the plan the dry run named
(--plan <digest>): read it, then apply exactly that.
Safe to run again after a crash half-way.`,
    )
    .action(migrate);
}

/** The dry run, or (--apply) the migration of the plan it named, with its progress on stderr. */
async function migrate(o: MigrateOptions): Promise<void> {
  const token = readSecret(o.vaultToken, o.vaultTokenFile, '--vault-token-file');
  if (!token) throw new UsageError('no Vault token: set --vault-token-file or VAULT_TOKEN (the root token)');
  // Also for a dry run: whether rks already ran here is told by its identity, derived from the password.
  if (!readSecret(o.adminPassword, o.adminPasswordFile, '--admin-password-file')) {
    throw new UsageError('rks migrate needs the rks administrator password (--admin-password-file or RKS_ADMIN_PASSWORD)');
  }
  if (o.apply && !o.classicStopped) {
    throw new UsageError('--apply needs --classic-stopped: stop every classic RKS server first (a classic still running would keep writing its own policies and tokens)');
  }
  // rks as serve would build it (rks serve checks the password's strength when it starts).
  const config = resolveConfig({
    ...settingDefaults(),
    vaultAddr: o.vaultAddr,
    vaultCaFile: o.vaultCaFile,
    vaultTimeout: VAULT_TIMEOUT,
    adminLogin: o.adminLogin,
    adminPassword: o.adminPassword,
    adminPasswordFile: o.adminPasswordFile,
    allowWeakAdminPassword: true,
  });
  const { migration, NotApplied, vault } = await buildMigration(config);
  try {
    const progress = (line: string) => !o.json && process.stderr.write(`migrate: ${line}\n`);
    if (!o.apply) {
      const plan = await migration.plan(token, progress);
      if (o.json) process.stdout.write(`${JSON.stringify({ plan, applied: false }, null, 2)}\n`);
      else process.stdout.write(`${describe(plan)}\n\ndry run: nothing changed\n`);
      return;
    }
    if (!o.plan) throw new UsageError('--apply needs --plan <digest>: run the dry run (rks migrate), read the plan, then apply the one it names');
    const { plan, result } = await migration.apply(token, o.plan, { revokeOthers: o.revokeOtherTokens }, progress);
    if (!o.json) process.stdout.write(`${describe(plan)}\n\n`);
    if (o.tokenDir) {
      fs.mkdirSync(o.tokenDir, { recursive: true, mode: 0o700 });
      for (const [g, t] of Object.entries(result.groupTokens)) saveSecretFile(path.join(o.tokenDir, `${g}.token`), t, `group ${g}'s token`);
    }
    const shown = o.tokenDir ? Object.fromEntries(Object.keys(result.groupTokens).map((g) => [g, path.join(o.tokenDir!, `${g}.token`)])) : result.groupTokens;
    if (o.json) process.stdout.write(`${JSON.stringify({ plan, applied: true, groupTokens: shown, revokedTokens: result.revokedTokens }, null, 2)}\n`);
    else {
      process.stdout.write(`migrated: ${Object.keys(result.groupTokens).length} group(s), ${result.revokedTokens} token(s) revoked; nodes register again with the new group tokens:\n`);
      for (const [g, t] of Object.entries(shown)) process.stdout.write(`  ${g}  ${t}\n`);
    }
  } catch (err) {
    if (err instanceof CliError || err instanceof UsageError) throw err;
    if (err instanceof NotApplied) throw new CliError(`${err.message}; nothing changed`);
    throw new CliError(`migration stopped: ${(err as Error).message} (run it again to finish: every step can be repeated)`);
  } finally {
    vault.close();
  }
}

/**
 * What a migration needs of rks, built here (loaded when used: every other command starts
 * without these modules): a Vault client, rks's stores, and the group and init rules it reuses.
 */
async function buildMigration(config: Config) {
  const [{ ClassicMigration, NotApplied }, { vaultStores }, { VaultClient }, { ServiceSession }, { GroupService }, { InitService }, { Storage }] = await Promise.all([
    import('../migrate/classic'),
    import('../vault/adapters'),
    import('../vault/client'),
    import('../vault/session'),
    import('../groups/service'),
    import('../init/service'),
    import('../secrets/storage'),
  ]);
  const vault = new VaultClient({ addr: config.vaultAddrs, caFile: config.vaultCaFile, timeoutMs: config.vaultTimeout * 1000, maxInFlight: config.vaultMaxInFlight });
  const stores = vaultStores(vault);
  const storage = new Storage(stores.kv);
  const groups = new GroupService(storage, stores.setup, stores.tokens, new ServiceSession(vault, config.admin, createLogger('silent')));
  const migration = new ClassicMigration(storage, stores.setup, stores.tokens, stores.setup, groups, new InitService(stores, config.admin, undefined, storage), config.admin.login.toLowerCase());
  return { migration, NotApplied, vault };
}

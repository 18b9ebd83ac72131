import { Command, CommanderError } from 'commander';
import { UsageError } from '../settings';
import { VERSION } from '../paths';
import { acmeCommand } from './acme';
import { groupCommand } from './group';
import { initCommand } from './init';
import { loginCommand } from './login';
import { nodeCommand } from './node';
import { secretCommand } from './secret';
import { statusCommand } from './status';
import { completionCommand } from './completion';
import { edgeCommand } from './edge';
import { migrateCommand } from './migrate';
import { CliError } from './http';
import { caCommand, certificateCommand } from './pki';
import { serveCommand } from './serve';

export function program(): Command {
  const root = new Command('rks')
    .description('rks, the remote key server: TLS keys from Vault/OpenBao, on demand, with a time to live')
    .version(VERSION)
    .showHelpAfterError()
    .addCommand(serveCommand())
    .addCommand(initCommand())
    .addCommand(migrateCommand())
    .addCommand(statusCommand())
    .addCommand(loginCommand())
    .addCommand(groupCommand())
    .addCommand(secretCommand())
    .addCommand(acmeCommand())
    .addCommand(nodeCommand())
    .addCommand(edgeCommand())
    .addCommand(caCommand())
    .addCommand(certificateCommand())
    .addCommand(completionCommand(program))
    .addHelpText(
      'after',
      `
Environment: RKS_URL, RKS_TOKEN and RKS_CA_CERT stand for --url, --token and --ca-cert.
Exit codes: 0 done, 1 rks refused or failed (its reason is printed), 2 usage error,
3 rks could not be reached or its TLS certificate not verified.`,
    );
  // Usage errors throw instead of exiting, so run() decides the exit code. Required options are
  // checked after commander's own checks, so an unknown option is named before a missing one.
  const walk = (cmd: Command): void => {
    cmd.exitOverride();
    const required = cmd.options.filter((o) => o.mandatory);
    for (const o of required) o.mandatory = false;
    if (required.length) {
      cmd.hook('preAction', (_parent, action) => {
        const missing = required.find((o) => action.getOptionValue(o.attributeName()) === undefined);
        if (missing) action.error(`error: required option '${missing.flags}' not specified`, { exitCode: 2, code: 'commander.missingMandatoryOptionValue' });
      });
    }
    cmd.commands.forEach(walk);
  };
  walk(root);
  return root;
}

/** Runs the CLI; failures print one line and set the exit code. */
export async function run(argv = process.argv): Promise<void> {
  // `rks … | head`: a closed pipe ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  const json = argv.includes('--json');
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander printed the message (or the help) already.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      if (json && err.exitCode !== 0) process.stdout.write(`${JSON.stringify({ errors: [err.message.replace(/^error: /, '')] })}\n`);
      return;
    }
    const e = err as Error & { code?: string };
    process.exitCode = err instanceof CliError ? err.exitCode : err instanceof UsageError || e.code === 'commander.invalidArgument' ? 2 : 1;
    // Under --json the failure is JSON on standard output too, in the API's shape.
    if (json) {
      // The API's shape: the reason alone, the status and code beside it.
      const answer = err instanceof CliError ? err.answer : undefined;
      const code = err instanceof CliError && err.code ? { code: err.code } : {};
      process.stdout.write(`${JSON.stringify({ errors: [answer?.reason ?? e.message], ...code, ...(answer ? { status: answer.status } : {}) })}\n`);
    }
    else process.stderr.write(`rks: ${e.message}\n`);
  }
}

if (require.main === module) void run();

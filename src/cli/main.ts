import { Command, CommanderError } from 'commander';
import { UsageError } from '../config';
import { VERSION } from '../paths';
import { acmeCommand, groupCommand, initCommand, loginCommand, nodeCommand, secretCommand } from './admin';
import { edgeCommand } from './edge';
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
    .addCommand(loginCommand())
    .addCommand(groupCommand())
    .addCommand(secretCommand())
    .addCommand(acmeCommand())
    .addCommand(nodeCommand())
    .addCommand(edgeCommand())
    .addCommand(caCommand())
    .addCommand(certificateCommand())
    .addHelpText(
      'after',
      `
Environment: RKS_URL, RKS_TOKEN and RKS_CA_CERT stand for --url, --token and --ca-cert.
Exit codes: 0 done, 1 rks refused or failed (its reason is printed), 2 usage error,
3 rks could not be reached or its TLS certificate not verified.`,
    );
  // Usage errors throw instead of exiting, so run() decides the exit code.
  const walk = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(walk);
  };
  walk(root);
  return root;
}

/** Runs the CLI; failures print one line and set the exit code. */
export async function run(argv = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander printed the message (or the help) already.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`rks: ${e.message}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : err instanceof UsageError || e.code === 'commander.invalidArgument' ? 2 : 1;
  }
}

if (require.main === module) void run();

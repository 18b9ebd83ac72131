import { Command } from 'commander';
import { VERSION } from '../paths';
import { CliError } from './http';
import { caCommand, certificateCommand } from './pki';
import { serveCommand } from './serve';

export function program(): Command {
  return new Command('rks')
    .description('rks, the remote key server: TLS keys from Vault/OpenBao, on demand, with a time to live')
    .version(VERSION)
    .showHelpAfterError()
    .addCommand(serveCommand())
    .addCommand(caCommand())
    .addCommand(certificateCommand());
}

/** Runs the CLI; failures print one line and set the exit code (2 for usage errors). */
export async function run(argv = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    const e = err as Error & { exitCode?: number; code?: string };
    process.stderr.write(`rks: ${e.message}\n`);
    process.exitCode = err instanceof CliError ? e.exitCode ?? 1 : e.code === 'commander.invalidArgument' ? 2 : 1;
  }
}

if (require.main === module) void run();

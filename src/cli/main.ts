import { Command } from 'commander';
import { VERSION } from '../paths';
import { serveCommand } from './serve';

export function program(): Command {
  return new Command('rks')
    .description('rks, the remote key server: TLS keys from Vault/OpenBao, on demand, with a time to live')
    .version(VERSION)
    .showHelpAfterError()
    .addCommand(serveCommand());
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((err: Error) => {
      process.stderr.write(`rks: ${err.message}\n`);
      process.exit(1);
    });
}

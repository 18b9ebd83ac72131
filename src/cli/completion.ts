import { Command } from 'commander';
import { UsageError } from '../settings';

/** Every command path of the CLI with the words that may follow it (subcommands, then options). */
function paths(cmd: Command, prefix = '', out: [string, string[]][] = []): [string, string[]][] {
  const words = [...cmd.commands.map((c) => c.name()), ...cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => Boolean(f))), '--help'];
  out.push([prefix, words]);
  for (const c of cmd.commands) paths(c, prefix ? `${prefix} ${c.name()}` : c.name(), out);
  return out;
}

/** A bash completion script for the tree (zsh runs it through bashcompinit). */
export function bashCompletion(root: Command): string {
  const cases = paths(root)
    .map(([p, words]) => `    "${p}") echo "${words.join(' ')}" ;;`)
    .join('\n');
  return `# rks completion (bash; zsh: autoload -U +X bashcompinit && bashcompinit first)
_rks_words() {
  case "$1" in
${cases}
    *) return 1 ;;
  esac
}
_rks() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" next w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    next="\${path:+$path }$w"
    [[ $w != -* ]] && _rks_words "$next" >/dev/null && path=$next
  done
  COMPREPLY=($(compgen -W "$(_rks_words "$path")" -- "$cur"))
}
complete -o default -F _rks rks
`;
}

export function completionCommand(program: () => Command): Command {
  return new Command('completion')
    .description('Print a shell completion script: eval "$(rks completion bash)" in ~/.bashrc, or zsh in ~/.zshrc')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`completion is for bash or zsh, not '${shell}'`);
      const script = bashCompletion(program());
      process.stdout.write(shell === 'zsh' ? `autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n${script}` : script);
    });
}

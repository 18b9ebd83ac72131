/**
 * The README's shell blocks as commands a test can run in order, each with the output the README
 * shows under it.
 */

export interface ReadmeCommand {
  /** The command as written (continuation lines included). */
  text: string;
  /** README line it starts on. */
  line: number;
  /** The `# …` lines right under it: what the README says it prints. */
  shown: string[];
}

export interface ReadmeBlock {
  /** The nearest heading above it. */
  section: string;
  lang: string;
  line: number;
  body: string;
}

/** Every fenced block with its language and the heading it sits under. */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const lines = markdown.split('\n');
  let section = '';
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)\s*$/.exec(lines[i]);
    if (!fence) {
      const heading = /^#{1,6}\s+(.*)$/.exec(lines[i]);
      if (heading) section = heading[1].trim();
      continue;
    }
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && !/^```\s*$/.test(lines[i])) body.push(lines[i]);
    blocks.push({ section, lang: fence[1], line: start + 2, body: body.join('\n') });
  }
  return blocks;
}

/**
 * A shell block split into commands: a line continues the command above when that one ends with
 * `\`, `|`, `&&` or `||`, or when it is indented; `# …` lines at the start of a line are what the
 * command above prints.
 */
export function readmeCommands(block: ReadmeBlock): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  const lines = block.body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i];
    const last = commands[commands.length - 1];
    if (text.trim() === '') continue;
    if (text.startsWith('#')) {
      if (last) last.shown.push(text.replace(/^#\s?/, ''));
      continue;
    }
    const continues = last && last.shown.length === 0 && (/(\\|\||&&)\s*$/.test(last.text) || /^\s/.test(text));
    if (continues) last.text += `\n${text}`;
    else commands.push({ text, line: block.line + i, shown: [] });
  }
  return commands;
}

/**
 * What the README shows as a pattern over the output with all white space removed: `…` stands for
 * anything, and a trailing `   (a remark)` is the README talking, not the output.
 */
export function shownPattern(shown: string[]): RegExp | undefined {
  const text = shown
    .map((l) => l.replace(/\s{2,}\(.*\)\s*$/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!text) return undefined;
  const parts = text.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(parts.join('[\\s\\S]*?'));
}

/** The README shows a refusal: the command is meant to fail. */
export function showsFailure(shown: string[]): boolean {
  return /^(rks: |\{"errors")/.test(shown[0] ?? '');
}

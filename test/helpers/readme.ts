/**
 * The shell commands of README.md, block by block, as a reader would type them: continuation
 * lines joined, comments dropped. Tests run them as written, so the README cannot drift from what
 * works.
 */

/** The `sh` blocks under the `## heading` (up to the next `## `), each as a list of commands. */
export function shBlocks(readme: string, heading: string): string[][] {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no section "## ${heading}"`);
  const next = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => commands(m[1]!));
  if (blocks.length === 0) throw new Error(`README section "${heading}" has no sh block`);
  return blocks;
}

export function commands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map(stripComment)
    .filter((c) => c !== '');
}

/** Drops a `# comment` that starts outside quotes, after whitespace (as sh reads it). */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trim();
  }
  return line.trim();
}

// Markdown for benchmark reports: number formats and tables.

export const MB = 1024 * 1024;

export const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(3));
export const sms = (x: number) => (Number.isNaN(x) ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(3)}`);
export const fmt0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
export const fmt1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
export const fmt2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
export const ci = (c: [number, number]) => `[${sms(c[0])}, ${sms(c[1])}]`;

export function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

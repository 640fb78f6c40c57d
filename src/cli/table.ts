// Plain text tables for the terminal, coloured by status when writing to a TTY.
import type { CheckStatus } from '../types';

const COLOURS: Record<CheckStatus, string> = {
  ok: '\x1b[32m',
  warning: '\x1b[33m',
  problem: '\x1b[31m',
  unknown: '\x1b[35m',
};
const RESET = '\x1b[0m';

export function colourStatus(status: CheckStatus, colour: boolean): string {
  return paint(status.toUpperCase(), status, colour);
}

/** `text` in the colour of `status` when writing to a terminal. */
export function paint(text: string, status: CheckStatus, colour: boolean): string {
  return colour ? `${COLOURS[status]}${text}${RESET}` : text;
}

/** Lays out rows under a header; the last column is not padded so long messages wrap naturally. */
export function formatTable(header: string[], rows: string[][]): string {
  const visible = (s: string): number => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] as number) - visible(c))))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

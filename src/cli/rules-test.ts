// `rules test`: runs lines through the configured log rules and prints what each line raised — the
// daemon's config loading, rule building and LogMonitor, fed from a file or stdin instead of the journal.
// Input is plain text (one line per entry, all read by one source) or `journalctl -o export` output
// (each entry read by every source whose matches accept its fields). Needs no root, state or journal.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { DEFAULT_CONFIG_DIR } from '../config/load';
import { loadAgentConfig } from '../sections';
import type { JournalSourceSpec } from '../sources/rules/log-monitor';
import { buildRuleSet } from '../sources/rules/rule-set';
import { RuleTester, type LineResult } from '../sources/rules/rule-tester';
import { AgentError, messageOf } from '../errors';
import { looksLikeExport, readExport } from '../sources/journal/export-format';
import { entryMatches, matchGroups } from '../sources/journal/monitor';

export interface RulesTestOptions {
  configDir?: string;
  /** The source plain-text lines are fed to (default kernel); with export input, only this source. */
  source?: string;
  json?: boolean;
  /** A file, or '-' / undefined for stdin. */
  input?: string;
}

const DEFAULT_SOURCE = 'kernel';

/** Returns the exit code (0); bad config or input throws an AgentError (exit 2). */
export async function rulesTest(options: RulesTestOptions, out: NodeJS.WritableStream = process.stdout, stdin: Readable = process.stdin): Promise<number> {
  const dir = options.configDir;
  const loaded = loadAgentConfig(dir, { required: dir !== undefined });
  const tester = new RuleTester(buildRuleSet(loaded));
  const sourceNamed = (name: string, given: boolean): JournalSourceSpec => {
    const source = tester.source(name);
    if (source) return source;
    const known = tester.ruleSet.sources.map((s) => s.name).join(', ') || 'none';
    const files = loaded.files.length > 0 ? loaded.files.join(', ') : `${dir ?? DEFAULT_CONFIG_DIR} (no *.ini files)`;
    throw new AgentError(
      'CONFIG_INVALID',
      `${given ? `--source ${name}` : `source ${name} (plain text goes there unless --source names another)`}: no enabled source with enabled rules of that name in ${files} (sources with rules: ${known})`,
    );
  };
  const only = options.source !== undefined ? sourceNamed(options.source, true) : undefined;

  const fromStdin = options.input === undefined || options.input === '-';
  const name = fromStdin ? 'stdin' : (options.input as string);
  if (fromStdin && (stdin as { isTTY?: boolean }).isTTY === true) process.stderr.write('reading lines from the terminal; end with Ctrl-D\n');
  const { firstLine, chunks } = await peekFirstLine(readable(fromStdin ? stdin : createReadStream(name), name));
  const render = options.json ? renderJson : renderText;
  let n = 0;
  let quiet = 0;
  // Results are written in batches: one write per line costs more than matching it. A batch goes out
  // once the input has to be waited for (so a terminal sees each line's result at once) or grows large.
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length > 0) out.write(pending.join(''));
    pending = [];
  };
  const report = (text: string, sources: JournalSourceSpec[], result: LineResult, cursor?: string): void => {
    n++;
    if (result.raised.length === 0) quiet++;
    pending.push(render(n, text, sources, result, cursor));
    if (pending.length >= 1000) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  try {
    await feed();
  } finally {
    // What was read before a bad entry is printed before the error.
    flush();
  }
  if (!options.json) out.write(`${n} ${n === 1 ? 'entry' : 'entries'}: ${n - quiet} raised something, ${quiet} raised nothing\n`);
  return 0;

  async function feed(): Promise<void> {
    if (looksLikeExport(firstLine)) {
      const routes = (only ? [only] : tester.ruleSet.sources).map((source) => ({ source, groups: matchGroups(source.matches) }));
      let realtimeUs = Date.now() * 1000;
      for await (const entry of readExport(chunks, name)) {
        const stamp = entry.fields.get('__REALTIME_TIMESTAMP')?.[0];
        if (stamp !== undefined) {
          if (!/^\d{1,17}$/.test(stamp)) {
            throw new AgentError('INPUT_INVALID', `${name}:${entry.line}: __REALTIME_TIMESTAMP "${stamp}" is not a time in microseconds since the epoch`);
          }
          realtimeUs = Number(stamp);
        }
        const sources = routes.filter((r) => entryMatches(r.groups, entry.fields)).map((r) => r.source);
        const message = entry.fields.get('MESSAGE')?.[0] ?? '';
        report(message, sources, tester.test(sources, message, realtimeUs), entry.fields.get('__CURSOR')?.[0]);
      }
    } else {
      const source = only ?? sourceNamed(DEFAULT_SOURCE, false);
      // Plain text carries no times: every line is taken as logged at the same instant, so a count rule
      // raises once its threshold of lines is reached, whatever its window.
      const realtimeUs = Date.now() * 1000;
      for await (const text of textLines(chunks)) report(text, [source], tester.test([source], text, realtimeUs));
    }
  }
}

function renderJson(line: number, text: string, sources: JournalSourceSpec[], r: LineResult, cursor?: string): string {
  return `${JSON.stringify({ line, text, ...(cursor !== undefined ? { cursor } : {}), sources: sources.map((s) => s.name), ...r })}\n`;
}

function renderText(line: number, text: string, sources: JournalSourceSpec[], r: LineResult): string {
  // A rule is named by its source only where one entry went to several (NPD rule names repeat across files).
  const label = (source: string, rule: string): string => (sources.length > 1 ? `${source}/${rule}` : rule);
  const shown = text.replace(/\n/g, '\\n');
  const out = [`${line} [${sources.map((s) => s.name).join(', ') || 'read by no source'}]: ${shown}`];
  for (const x of r.raised) {
    const what = x.kind === 'temporary' ? 'event' : `condition ${x.condition}`;
    out.push(`    ${x.kind.padEnd(9)}  ${label(x.source, x.rule)}: ${what}, reason ${x.reason}${x.kind === 'count' ? ` (${x.message})` : ''}`);
  }
  for (const x of r.counted) {
    out.push(`    ${'counted'.padEnd(9)}  ${label(x.source, x.rule)}: ${x.matches} of ${x.count} within ${x.window}, condition ${x.condition} not set yet`);
  }
  for (const x of r.reverted) {
    const effect = x.kind === 'count' ? `${x.matches ?? 0} left toward condition ${x.condition}` : `clears condition ${x.condition}`;
    out.push(`    ${'revert'.padEnd(9)}  ${label(x.source, x.rule)}: ${effect}`);
  }
  if (r.raised.length + r.counted.length + r.reverted.length === 0) out.push('    nothing');
  return `${out.join('\n')}\n`;
}

/** The stream's chunks; a read error (missing file, a directory) becomes a one-line input error. */
async function* readable(stream: Readable, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
  } catch (err) {
    throw new AgentError('INPUT_INVALID', `${name}: cannot read the input: ${messageOf(err)}`, { cause: err });
  }
}

/** Reads until the first line is complete (it decides the format) and hands back every chunk, that one included. */
async function peekFirstLine(chunks: AsyncGenerator<Buffer>): Promise<{ firstLine: string; chunks: AsyncGenerator<Buffer> }> {
  const head: Buffer[] = [];
  let firstLine: string | undefined;
  while (firstLine === undefined) {
    const next = await chunks.next();
    if (next.done) break;
    head.push(next.value);
    if (next.value.includes(0x0a)) {
      const joined = Buffer.concat(head);
      firstLine = joined.toString('utf8', 0, joined.indexOf(0x0a));
    }
  }
  firstLine ??= Buffer.concat(head).toString('utf8');
  async function* all(): AsyncGenerator<Buffer> {
    yield* head;
    yield* chunks;
  }
  return { firstLine, chunks: all() };
}

/** Lines of text: split at "\n" (a "\r" before it dropped), invalid UTF-8 replaced by U+FFFD. */
async function* textLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let rest: Buffer = Buffer.alloc(0);
  const decode = (b: Buffer, from: number, to: number): string => b.toString('utf8', from, to > from && b[to - 1] === 0x0d ? to - 1 : to);
  for await (const chunk of chunks) {
    const buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      yield decode(buf, start, nl);
      start = nl + 1;
    }
    rest = buf.subarray(start);
  }
  if (rest.length > 0) yield decode(rest, 0, rest.length);
}

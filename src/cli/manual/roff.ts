// Just enough roff (man(7) macros) to write the manual pages from the program and the schema.
// Text is escaped here, so callers pass plain strings and never write a control character by accident.

/**
 * Plain text as roff: backslashes and double quotes escaped, a leading `.` or `'` neutralised (it would start a request),
 * characters beyond ASCII as \[uXXXX] so the page renders the same in any locale, without preconv.
 * `code` also turns `-` into `\-`, the minus that man pages use for options (copy-pastable).
 */
export function esc(text: string, code = false): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\e';
    else if (ch === '"') out += '\\(dq'; // also safe inside a quoted macro argument
    else if (ch === '-' && code) out += '\\-';
    else if (cp > 0x7e) out += `\\[u${cp.toString(16).toUpperCase().padStart(4, '0')}]`;
    else out += ch;
  }
  return out.replace(/^([.'])/gm, '\\&$1');
}

export const bold = (text: string): string => `\\fB${esc(text, true)}\\fR`;
export const italic = (text: string): string => `\\fI${esc(text, true)}\\fR`;

/** A paragraph of prose: one source line, filled by the formatter. */
export function para(text: string): string[] {
  return ['.PP', esc(text)];
}

/** A tagged paragraph: the tag (already roff) on its own line, the body indented below it. */
export function tagged(tag: string, ...body: string[]): string[] {
  return ['.TP', tag, ...body.flatMap((b, i) => (i === 0 ? [esc(b)] : ['.br', esc(b)]))];
}

/**
 * The title line (name, section, footer texts; no date, so every build writes the same page), then no
 * hyphenation and a ragged right margin: names like node-health.ini must not be split at a line end.
 */
export function title(name: string, section: number, source: string, manual: string): string {
  return `.TH ${esc(name.toUpperCase(), true)} ${section} "" "${esc(source)}" "${esc(manual)}"\n.nh\n.ad l`;
}

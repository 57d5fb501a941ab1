/**
 * Tables in notebooks: arquero tables through their own `toHTML()`, or plain row objects,
 * shown as `text/html` with a `text/plain` fallback.
 */
import { inspect } from 'util';
import { display, type MimeBundle } from './display';
import { escapeHtml } from './render';

/** The part of an arquero table used here (duck-typed: lib does not need to import arquero). */
export interface ArqueroLike {
  toHTML(options?: { limit?: number; format?: Record<string, unknown> }): string;
  numRows(): number;
  objects(options?: { limit?: number }): object[];
}

/** Options of {@link table}. */
export interface TableOptions {
  /** Show at most this many rows. */
  limit: number;
  /** Significant digits for non-integer numbers. */
  digits: number;
  /** Caption above the table ('' for none). */
  title: string;
  /** Display in the notebook when running in tslab. */
  display: boolean;
}

export const DEFAULT_TABLE_OPTIONS: Readonly<TableOptions> = Object.freeze({
  limit: 100,
  digits: 4,
  title: '',
  display: true,
});

/** What {@link table} produced. */
export interface TableResult {
  /** The HTML table. */
  html: string;
  /** Aligned plain-text rendering. */
  text: string;
  /** The displayed bundle. */
  bundle: MimeBundle;
  /** Whether it reached a notebook. */
  shown: boolean;
}

function isArquero(t: unknown): t is ArqueroLike {
  const a = t as Partial<ArqueroLike> | null;
  return (
    a != null && typeof a.toHTML === 'function' && typeof a.numRows === 'function' && typeof a.objects === 'function'
  );
}

/** Formats a cell: integers as is, other numbers to `digits` significant digits. */
export function formatCell(v: unknown, digits: number): string {
  if (typeof v === 'number') {
    if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
    return Number(v.toPrecision(digits)).toString();
  }
  if (v == null) return '';
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function columnsOf(rows: readonly Record<string, unknown>[]): string[] {
  const cols: string[] = [];
  const seen = new Set<string>();
  for (const r of rows)
    for (const k of Object.keys(r))
      if (!seen.has(k)) {
        seen.add(k);
        cols.push(k);
      }
  return cols;
}

/** Plain-text table with right-aligned numeric columns. */
export function textTable(rows: readonly Record<string, unknown>[], digits: number): string {
  const cols = columnsOf(rows);
  const cells = rows.map((r) => cols.map((c) => formatCell(r[c], digits)));
  const widths = cols.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j].length)));
  const numeric = cols.map((c) => rows.every((r) => r[c] == null || typeof r[c] === 'number'));
  const fmt = (vals: string[]): string =>
    vals
      .map((v, j) => (numeric[j] ? v.padStart(widths[j]) : v.padEnd(widths[j])))
      .join('  ')
      .trimEnd();
  return [fmt(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(fmt)].join('\n');
}

/** HTML table of row objects. */
export function htmlTable(rows: readonly Record<string, unknown>[], digits: number): string {
  const cols = columnsOf(rows);
  const numeric = cols.map((c) => rows.every((r) => r[c] == null || typeof r[c] === 'number'));
  const align = (j: number): string => (numeric[j] ? ' style="text-align: right;"' : '');
  const head = `<thead><tr>${cols.map((c, j) => `<th${align(j)}>${escapeHtml(c)}</th>`).join('')}</tr></thead>`;
  const body = rows
    .map(
      (r) => `<tr>${cols.map((c, j) => `<td${align(j)}>${escapeHtml(formatCell(r[c], digits))}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<table>${head}<tbody>${body}</tbody></table>`;
}

/** Shows an arquero table (or an array of row objects) as an HTML table. */
export function table(
  data: ArqueroLike | readonly Record<string, unknown>[],
  options: Partial<TableOptions> = {},
): TableResult {
  const o = { ...DEFAULT_TABLE_OPTIONS, ...options };
  let html: string;
  let rows: Record<string, unknown>[];
  let total: number;
  if (isArquero(data)) {
    total = data.numRows();
    rows = data.objects({ limit: o.limit }) as Record<string, unknown>[];
    const format: Record<string, (v: unknown) => string> = {};
    for (const c of columnsOf(rows)) format[c] = (v) => formatCell(v, o.digits);
    html = data.toHTML({ limit: o.limit, format });
  } else if (Array.isArray(data)) {
    total = data.length;
    rows = (data as readonly Record<string, unknown>[]).slice(0, o.limit);
    html = htmlTable(rows, o.digits);
  } else {
    throw new Error(`table: expected an arquero table or an array of row objects, got ${typeof data}`);
  }
  const more = total > rows.length ? `${total - rows.length} more rows` : '';
  const caption = o.title ? `<div style="font:bold 13px sans-serif;margin:4px 0">${escapeHtml(o.title)}</div>` : '';
  const footer = more ? `<div style="font:11px sans-serif;color:#666">… ${more}</div>` : '';
  const text = [o.title, textTable(rows, o.digits), more ? `... ${more}` : ''].filter(Boolean).join('\n');
  const bundle: MimeBundle = {
    'text/html': `<div class="dinotwins-table">${caption}${html}${footer}</div>`,
    'text/plain': text,
  };
  const shown = o.display ? display(bundle) : false;
  const result: TableResult = { html: bundle['text/html'] as string, text, bundle, shown };
  Object.defineProperty(result, inspect.custom, {
    enumerable: false,
    value: () => (shown ? `[table: ${total} rows, shown]` : text),
  });
  return result;
}

/** GitHub Markdown table of row objects (results.md); '|' in cells is escaped, numbers formatted as in {@link table}. */
export function markdownTable(rows: readonly Record<string, unknown>[], digits = DEFAULT_TABLE_OPTIONS.digits): string {
  if (rows.length === 0) return '';
  const cols = columnsOf(rows);
  const cell = (v: unknown) => formatCell(v, digits).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const numeric = cols.map((c) => rows.every((r) => r[c] == null || typeof r[c] === 'number'));
  return [
    `| ${cols.map(cell).join(' | ')} |`,
    `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`),
  ].join('\n');
}

/**
 * A labels CSV for an image folder: one `file,label` row per image (RFC 4180 quoting; an optional
 * header row `file,label`). Paths are relative to the image folder, '/'-separated; labels are class
 * names. Classes are sorted by code point, as torchvision sorts class folders; when every label is a
 * non-negative integer they are sorted numerically instead, so labels 0..K-1 keep their numbers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ImageFolderError } from './errors';
import { compareCodePoints } from './codePoints';

export interface LabelsCsvRow {
  /** Path relative to the image folder, normalised ('/'-separated, no './'). */
  file: string;
  /** Index into classNames. */
  label: number;
  /** 1-based line of the row in the CSV, for messages. */
  line: number;
}

export interface LabelsCsv {
  classNames: string[];
  rows: LabelsCsvRow[];
}

/** Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, quotes as "" and newlines). Each record keeps its first line number. */
export function parseCsv(text: string, file: string): { fields: string[]; line: number }[] {
  const out: { fields: string[]; line: number }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let fieldStarted = false;
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // a UTF-8 byte-order mark
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      if (fieldStarted && field.length > 0)
        throw new ImageFolderError(
          'csv',
          `${file}:${line}: a quote inside an unquoted field; quote the whole field ("a ""b"" c")`,
          { file, expected: 'RFC 4180 CSV', actual: `line ${line}` },
        );
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      fields.push(field);
      if (!(fields.length === 1 && fields[0] === '')) out.push({ fields, line: start });
      fields = [];
      field = '';
      fieldStarted = false;
      line++;
      start = line;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted)
    throw new ImageFolderError('csv', `${file}:${start}: a quoted field is not closed`, {
      file,
      expected: 'a closing quote',
      actual: 'end of file',
    });
  fields.push(field);
  if (!(fields.length === 1 && fields[0] === '')) out.push({ fields, line: start });
  return out;
}

/** Normalises a CSV path to the folder-relative '/'-separated form; throws for absolute paths and paths leaving the folder. */
function normalise(p: string, file: string, line: number): string {
  const posix = p.replace(/\\/g, '/');
  if (posix.startsWith('/') || /^[A-Za-z]:\//.test(posix)) {
    throw new ImageFolderError(
      'csv',
      `${file}:${line}: '${p}' is an absolute path; give paths relative to the image folder`,
      { file, expected: 'a relative path', actual: p },
    );
  }
  const n = path.posix.normalize(posix);
  if (n === '..' || n.startsWith('../'))
    throw new ImageFolderError('csv', `${file}:${line}: '${p}' leaves the image folder`, {
      file,
      expected: 'a path inside the image folder',
      actual: p,
    });
  return n;
}

/** Reads and checks a labels CSV: two fields per row, no empty or duplicate file, no empty label. */
export function readLabelsCsv(file: string): LabelsCsv {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ImageFolderError(
      'csv',
      `cannot read the labels CSV ${file}: ${(e as Error).message}`,
      { file, expected: 'a readable file', actual: (e as { code?: string }).code ?? 'unreadable' },
      { cause: e },
    );
  }
  const records = parseCsv(text, file);
  if (records.length > 0) {
    const [a, b] = records[0].fields.map((f) => f.trim().toLowerCase());
    if (records[0].fields.length === 2 && ['file', 'path', 'filename'].includes(a) && ['label', 'class'].includes(b))
      records.shift();
  }
  if (records.length === 0)
    throw new ImageFolderError('csv', `the labels CSV ${file} has no rows; expected one 'file,label' row per image`, {
      file,
      expected: 'file,label rows',
      actual: 'none',
    });
  const seen = new Map<string, number>();
  const raw: { file: string; label: string; line: number }[] = [];
  for (const { fields, line } of records) {
    if (fields.length !== 2)
      throw new ImageFolderError(
        'csv',
        `${file}:${line}: expected 2 fields (file,label), got ${fields.length}: ${JSON.stringify(fields)}`,
        { file, expected: '2 fields', actual: `${fields.length}` },
      );
    const [f, label] = [fields[0].trim(), fields[1].trim()];
    if (!f)
      throw new ImageFolderError('csv', `${file}:${line}: empty file name`, {
        file,
        expected: 'a file name',
        actual: 'empty',
      });
    if (!label)
      throw new ImageFolderError(
        'csv',
        `${file}:${line}: '${f}' has an empty label; every listed image needs one (leave unlabelled images out of the CSV)`,
        { file, expected: 'a label', actual: 'empty' },
      );
    const rel = normalise(f, file, line);
    const first = seen.get(rel);
    if (first !== undefined)
      throw new ImageFolderError('csv', `${file}:${line}: '${rel}' is listed twice (first on line ${first})`, {
        file,
        expected: 'each file once',
        actual: `lines ${first} and ${line}`,
      });
    seen.set(rel, line);
    raw.push({ file: rel, label, line });
  }
  const names = [...new Set(raw.map((r) => r.label))];
  const numeric = names.every((n) => /^\d+$/.test(n));
  names.sort(numeric ? (a, b) => Number(a) - Number(b) || compareCodePoints(a, b) : compareCodePoints);
  const index = new Map(names.map((n, i) => [n, i]));
  return {
    classNames: names,
    rows: raw.map((r) => ({ file: r.file, label: index.get(r.label) as number, line: r.line })),
  };
}

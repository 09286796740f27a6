/**
 * The JSON body parser (RFC 8259, strict), built so that no body can be turned against the
 * service:
 *
 * - every rectangular array of numbers, at any depth, becomes one DenseArray (a Float64Array and
 *   its shape) as it is read: 8 bytes a number instead of a boxed number in a JS array per row,
 *   and never an issue per element later, since validation then sees one value per field;
 * - an array of numbers that holds anything else, a ragged one, or a number that overflows float64
 *   is refused at the first offending entry, naming its path (inputs[3][1]);
 * - other lists and objects are bounded (MAX_ENTRIES entries, MAX_DEPTH nesting), so the work and
 *   memory a body can cause are bounded by its size;
 * - there is no recursion (an explicit stack), and a large body is parsed in slices with the event
 *   loop free between them (parseJsonBody), so /health keeps answering while it is read.
 *
 * `__proto__` becomes an own key, as with JSON.parse (the strict schemas then refuse it); a
 * leading UTF-8 byte order mark is skipped (RFC 8259 §8.1 allows it).
 */
import { CoreError } from '../core/errors.ts';
import { ServiceError } from '../errors.ts';
import { DenseArray } from './dense.ts';

/** Most entries of a list that is not an array of numbers, or of an object. */
export const MAX_ENTRIES = 10_000;
/** Most values in a body outside arrays of numbers (strings, objects, lists, scalars). */
export const MAX_VALUES = 200_000;
/** Deepest nesting of lists and objects. */
export const MAX_DEPTH = 64;
/** Bytes parsed between two turns of the event loop. */
const SLICE_BYTES = 1 << 18;

const enum C {
  TAB = 0x09, LF = 0x0a, CR = 0x0d, SPACE = 0x20, QUOTE = 0x22, PLUS = 0x2b, COMMA = 0x2c, MINUS = 0x2d, DOT = 0x2e,
  ZERO = 0x30, NINE = 0x39, COLON = 0x3a, OPEN_ARRAY = 0x5b, BACKSLASH = 0x5c, CLOSE_ARRAY = 0x5d,
  E_UPPER = 0x45, E_LOWER = 0x65, OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d,
}

/** Exact powers of ten for Clinger's fast path. */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

class Syntax extends Error {}

interface ObjectFrame {
  readonly kind: 'object';
  readonly value: Record<string, unknown>;
  readonly path: string;
  key: string | undefined;
  entries: number;
}

interface ListFrame {
  readonly kind: 'list';
  readonly value: unknown[];
  readonly path: string;
}

/** A rectangular array of numbers being read, one level open per dimension. */
interface TensorFrame {
  readonly kind: 'tensor';
  readonly path: string;
  readonly ndim: number;
  /** Each dimension's length, from the first sub-array that closed at that level (−1: not yet). */
  readonly dims: number[];
  /** Entries read so far at each open level. */
  readonly counts: number[];
  /** The innermost open level. */
  level: number;
  /** True right after '[' or ',' at `level`: an entry (or, after '[', a ']') comes next. */
  expectEntry: boolean;
  data: Float64Array;
  length: number;
}

type Frame = ObjectFrame | ListFrame | TensorFrame;

function describeByte(b: number | undefined): string {
  if (b === undefined) return 'the end of the body';
  if (b >= 0x20 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
  return `byte 0x${b.toString(16).padStart(2, '0')}`;
}

/** What a JSON value starting with this byte is, for a message. */
function kindOf(b: number): string {
  if (b === C.QUOTE) return 'a string';
  if (b === C.OPEN_OBJECT) return 'an object';
  if (b === C.OPEN_ARRAY) return 'an array';
  if (b === 0x74 || b === 0x66) return 'a boolean';
  if (b === 0x6e) return 'null';
  return 'a number';
}

/** A resumable parser over one complete body. */
class Parser {
  private pos = 0;
  private readonly stack: Frame[] = [];
  private result: unknown;
  private done = false;
  /** A value has just been completed and is waiting to be attached to its parent. */
  private pending: { value: unknown } | undefined;
  /** Values read outside arrays of numbers, against MAX_VALUES. */
  private values = 0;

  constructor(private readonly buf: Buffer, private readonly part: string | undefined) {
    if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) this.pos = 3;
  }

  /** Parses until the body ends or about `budget` bytes more are read; returns whether it is done. */
  step(budget: number): boolean {
    const stop = Math.min(this.buf.length, this.pos + budget);
    try {
      if (this.stack.length === 0 && this.pending === undefined && !this.done) this.startValue('');
      while (!this.done && this.pos < stop) this.advance();
      if (!this.done && this.pos >= this.buf.length) this.advance(); // the body ended mid-value: report it
    } catch (err) {
      if (err instanceof Syntax) throw new ServiceError('MALFORMED_BODY', { reason: 'json', message: err.message, part: this.part });
      throw err;
    }
    return this.done;
  }

  value(): unknown {
    return this.result;
  }

  private fail(what: string): never {
    const bom = this.byteOrderMark();
    if (bom !== undefined) throw new Syntax(bom);
    const b = this.buf[this.pos];
    throw new Syntax(`${what}, found ${describeByte(b)} at position ${this.pos}${this.lineColumn()}`);
  }

  /** What a byte order mark where the parser failed means: UTF-16 at the start, or a UTF-8 mark after it. */
  private byteOrderMark(): string | undefined {
    const buf = this.buf, p = this.pos;
    if (p === 0 && ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff))) {
      return `the JSON is UTF-16 (it starts with the byte order mark ${buf[0] === 0xff ? 'FF FE' : 'FE FF'}); send it as UTF-8 (RFC 8259 §8.1), e.g. json.dumps(request).encode('utf-8')`;
    }
    if (buf[p] === 0xef && buf[p + 1] === 0xbb && buf[p + 2] === 0xbf) {
      return `a UTF-8 byte order mark (EF BB BF) at position ${p}${this.lineColumn()}; one may come at the very start of the JSON, nowhere else`;
    }
    return undefined;
  }

  private lineColumn(): string {
    let line = 1, last = -1;
    const end = Math.min(this.pos, this.buf.length);
    for (let i = 0; i < end; i++) if (this.buf[i] === C.LF) { line++; last = i; }
    return ` (line ${line}, column ${end - last})`;
  }

  private skipWhitespace(): void {
    const buf = this.buf;
    let p = this.pos;
    for (;;) {
      const b = buf[p];
      if (b === C.SPACE || b === C.LF || b === C.CR || b === C.TAB) p++;
      else break;
    }
    this.pos = p;
  }

  /** Reads the start of a value at `path`; scalars complete at once, containers push a frame. */
  private startValue(path: string): void {
    this.skipWhitespace();
    const b = this.buf[this.pos];
    if (b === undefined) this.fail('the JSON ends while a value is expected');
    if (++this.values > MAX_VALUES) throw new ServiceError('LIMIT_EXCEEDED', { reason: 'values', path: path || 'the body', limit: MAX_VALUES });
    if (this.stack.length >= MAX_DEPTH) throw new ServiceError('MALFORMED_BODY', { reason: 'tooDeep', path: path || 'the body', depth: this.stack.length + 1 });
    if (b === C.OPEN_OBJECT) {
      this.pos++;
      this.stack.push({ kind: 'object', value: {}, path, key: undefined, entries: 0 });
      return;
    }
    if (b === C.OPEN_ARRAY) {
      this.startArray(path);
      return;
    }
    this.complete(this.scalar());
  }

  /** '[': a tensor when its first entry after the leading '['s is a number (or the innermost of ≥ 2 is empty), else a list. */
  private startArray(path: string): void {
    const buf = this.buf;
    let p = this.pos, brackets = 0;
    for (;;) {
      const b = buf[p];
      if (b === C.OPEN_ARRAY) { brackets++; p++; } else if (b === C.SPACE || b === C.LF || b === C.CR || b === C.TAB) p++;
      else break;
    }
    const first = buf[p];
    const numeric = first === C.MINUS || (first !== undefined && first >= C.ZERO && first <= C.NINE);
    if (numeric || (first === C.CLOSE_ARRAY && brackets >= 2)) {
      if (this.stack.length + brackets > MAX_DEPTH) throw new ServiceError('MALFORMED_BODY', { reason: 'tooDeep', path: path || 'the body', depth: this.stack.length + brackets });
      this.pos = p;
      const dims = new Array<number>(brackets).fill(-1);
      this.stack.push({
        kind: 'tensor', path, ndim: brackets, dims, counts: new Array<number>(brackets).fill(0), level: brackets - 1,
        expectEntry: true, data: new Float64Array(64), length: 0,
      });
      return;
    }
    this.pos++;
    this.stack.push({ kind: 'list', value: [], path });
  }

  /** A completed value goes to its parent (or is the result). */
  private complete(value: unknown): void {
    this.pending = { value };
  }

  private advance(): void {
    if (this.pending !== undefined) {
      const { value } = this.pending;
      this.pending = undefined;
      this.attach(value);
      return;
    }
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) {
      this.skipWhitespace();
      if (this.pos < this.buf.length) this.fail('the JSON value ends but more follows');
      this.done = true;
      return;
    }
    if (top.kind === 'tensor') this.tensorStep(top);
    else if (top.kind === 'list') this.listStep(top);
    else this.objectStep(top);
  }

  /** Puts a completed value into the frame on top (or makes it the result). */
  private attach(value: unknown): void {
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) {
      this.result = value;
      this.skipWhitespace();
      if (this.pos < this.buf.length) this.fail('the JSON value ends but more follows');
      this.done = true;
      return;
    }
    if (top.kind === 'list') {
      if (top.value.length >= MAX_ENTRIES) throw new ServiceError('LIMIT_EXCEEDED', { reason: 'arrayLength', path: top.path || 'the body', limit: MAX_ENTRIES });
      top.value.push(value);
      this.afterEntry(C.CLOSE_ARRAY);
      return;
    }
    if (top.kind === 'object') {
      const key = top.key as string;
      if (key === '__proto__') Object.defineProperty(top.value, key, { value, enumerable: true, writable: true, configurable: true });
      else top.value[key] = value;
      top.key = undefined;
      this.afterEntry(C.CLOSE_OBJECT);
    }
  }

  /** After an entry: ',' (another comes, left for the frame's step) or the closing bracket. */
  private afterEntry(close: number): void {
    this.skipWhitespace();
    const b = this.buf[this.pos];
    if (b === C.COMMA) {
      this.pos++;
      this.skipWhitespace();
      if (this.buf[this.pos] === close) this.fail('a trailing comma is not JSON');
      return;
    }
    if (b === close) {
      this.pos++;
      const frame = this.stack.pop() as ObjectFrame | ListFrame;
      this.complete(frame.value);
      return;
    }
    this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
  }

  private listStep(top: ListFrame): void {
    this.skipWhitespace();
    if (this.buf[this.pos] === C.CLOSE_ARRAY && top.value.length === 0) {
      this.pos++;
      this.stack.pop();
      this.complete(top.value);
      return;
    }
    this.startValue(`${top.path}[${top.value.length}]`);
  }

  private objectStep(top: ObjectFrame): void {
    this.skipWhitespace();
    const b = this.buf[this.pos];
    if (b === C.CLOSE_OBJECT && top.entries === 0) {
      this.pos++;
      this.stack.pop();
      this.complete(top.value);
      return;
    }
    if (b !== C.QUOTE) this.fail(top.entries === 0 ? "expected a key (a string in double quotes) or '}'" : 'expected a key (a string in double quotes)');
    if (top.entries >= MAX_ENTRIES) throw new ServiceError('LIMIT_EXCEEDED', { reason: 'arrayLength', path: top.path || 'the body', limit: MAX_ENTRIES });
    const key = this.string();
    this.skipWhitespace();
    if (this.buf[this.pos] !== C.COLON) this.fail(`expected ':' after the key "${key.slice(0, 40)}"`);
    this.pos++;
    top.key = key;
    top.entries++;
    this.startValue(top.path === '' ? key : `${top.path}.${key}`);
  }

  /** Reads entries of a tensor until it closes or the slice's bytes are used. */
  private tensorStep(t: TensorFrame): void {
    const buf = this.buf;
    const stop = Math.min(buf.length, this.pos + SLICE_BYTES);
    const inner = t.ndim - 1;
    while (this.pos < stop || this.pos >= buf.length) {
      this.skipWhitespace();
      const b = buf[this.pos];
      if (b === undefined) this.fail('the JSON ends inside an array');
      if (t.expectEntry) {
        if (b === C.CLOSE_ARRAY) {
          if (t.counts[t.level] > 0) this.fail('a trailing comma is not JSON');
          if (this.closeLevel(t)) return;
          continue;
        }
        if (t.level < inner) {
          if (b !== C.OPEN_ARRAY) this.wrongType(t, 'an array', kindOf(b));
          this.pos++;
          t.level++;
          t.counts[t.level] = 0;
          continue;
        }
        if (!(b === C.MINUS || (b >= C.ZERO && b <= C.NINE))) {
          if (b === C.OPEN_ARRAY || b === C.QUOTE || b === C.OPEN_OBJECT || b === 0x74 || b === 0x66 || b === 0x6e) this.wrongType(t, 'a number', kindOf(b));
          this.fail(b === 0x4e || b === 0x49 ? 'NaN and Infinity are not JSON; send finite numbers' : 'expected a number');
        }
        this.innerRun(t);
        continue;
      }
      if (b === C.COMMA) {
        this.pos++;
        t.expectEntry = true;
        this.skipWhitespace();
        if (buf[this.pos] === C.CLOSE_ARRAY) this.fail('a trailing comma is not JSON');
        continue;
      }
      if (b === C.CLOSE_ARRAY) {
        if (this.closeLevel(t)) return;
        continue;
      }
      this.fail("expected ',' or ']'");
    }
  }

  /**
   * The hot loop: numbers of the innermost level and the commas between them, kept in locals, up
   * to the row's closing bracket (or anything else, left to tensorStep).
   */
  private innerRun(t: TensorFrame): void {
    const buf = this.buf;
    let data = t.data, length = t.length, count = t.counts[t.level];
    for (;;) {
      const start = this.pos;
      const v = this.number();
      if (!Number.isFinite(v)) {
        t.counts[t.level] = count;
        throw new ServiceError('INVALID_REQUEST', { reason: 'notFinite', path: this.entryPath(t), text: buf.toString('latin1', start, this.pos) });
      }
      if (length === data.length) {
        const grown = new Float64Array(Math.max(64, Math.min(2 * length, length + (buf.length - this.pos))));
        grown.set(data);
        data = grown;
      }
      data[length++] = v;
      count++;
      let p = this.pos;
      let b = buf[p];
      while (b === C.SPACE || b === C.LF || b === C.CR || b === C.TAB) b = buf[++p];
      if (b !== C.COMMA) { this.pos = p; break; }
      b = buf[++p];
      while (b === C.SPACE || b === C.LF || b === C.CR || b === C.TAB) b = buf[++p];
      this.pos = p;
      if (!(b === C.MINUS || (b >= C.ZERO && b <= C.NINE))) {
        // anything but a number after the comma: tensorStep reports it (or a trailing comma)
        t.data = data; t.length = length; t.counts[t.level] = count; t.expectEntry = true;
        return;
      }
    }
    t.data = data; t.length = length; t.counts[t.level] = count; t.expectEntry = false;
  }

  /** Closes the innermost open level of a tensor; returns true when the whole tensor closed. */
  private closeLevel(t: TensorFrame): boolean {
    this.pos++;
    const l = t.level;
    const n = t.counts[l];
    if (t.dims[l] === -1) t.dims[l] = n;
    else if (t.dims[l] !== n) {
      throw new CoreError('SHAPE_MISMATCH', { reason: 'ragged', field: this.levelPath(t, l - 2), row: t.counts[l - 1], length: n, first: t.dims[l] });
    }
    if (l === 0) {
      this.stack.pop();
      const count = t.dims.reduce((a, b) => a * b, 1);
      const data = t.data.length === count ? t.data : t.data.slice(0, count);
      this.complete(new DenseArray(t.dims, data));
      return true;
    }
    t.level--;
    t.counts[t.level]++;
    t.expectEntry = false;
    return false;
  }

  /** The path of the sub-array open at `level` (−1: the tensor itself), e.g. inputs[3]. */
  private levelPath(t: TensorFrame, level: number): string {
    let p = t.path || 'the body';
    for (let i = 0; i <= level; i++) p += `[${t.counts[i]}]`;
    return p;
  }

  /** The path of the entry about to be read at the innermost open level. */
  private entryPath(t: TensorFrame): string {
    return `${this.levelPath(t, t.level - 1)}[${t.counts[t.level]}]`;
  }

  private wrongType(t: TensorFrame, expected: string, got: string): never {
    throw new ServiceError('INVALID_REQUEST', { reason: 'wrongType', path: this.entryPath(t), expected, got });
  }

  private scalar(): unknown {
    const buf = this.buf;
    const b = buf[this.pos];
    if (b === C.QUOTE) return this.string();
    if (b === C.MINUS || (b >= C.ZERO && b <= C.NINE)) return this.number();
    if (this.literal('true')) return true;
    if (this.literal('false')) return false;
    if (this.literal('null')) return null;
    const start = this.pos;
    if (this.literal('NaN') || this.literal('Infinity')) {
      this.pos = start;
      this.fail('NaN and Infinity are not JSON; send finite numbers');
    }
    return this.fail('expected a value (an object, array, string, number, true, false or null)');
  }

  private literal(word: string): boolean {
    for (let i = 0; i < word.length; i++) if (this.buf[this.pos + i] !== word.charCodeAt(i)) return false;
    this.pos += word.length;
    return true;
  }

  /**
   * A number by the JSON grammar, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. With at most
   * 15 significant digits and a decimal exponent within ±22 the value is m·10^e or m/10^−e,
   * both exact operands, so one correctly rounded operation (Clinger's fast path); otherwise
   * the text goes to Number(), which rounds correctly too.
   */
  private number(): number {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    let negative = false;
    if (buf[p] === C.MINUS) { negative = true; p++; }
    let mantissa = 0, digits = 0, exp10 = 0;
    const d0 = buf[p];
    if (d0 === C.ZERO) p++;
    else if (d0 !== undefined && d0 > C.ZERO && d0 <= C.NINE) {
      for (let d = buf[p]; d >= C.ZERO && d <= C.NINE; d = buf[++p]) {
        if (digits < 15) { mantissa = mantissa * 10 + (d - C.ZERO); if (mantissa !== 0) digits++; } else { digits++; exp10++; }
      }
    } else {
      this.pos = p;
      this.fail('expected a digit');
    }
    if (buf[p] === C.DOT) {
      p++;
      const f0 = buf[p];
      if (!(f0 >= C.ZERO && f0 <= C.NINE)) { this.pos = p; this.fail('expected a digit after the decimal point'); }
      for (let d = buf[p]; d >= C.ZERO && d <= C.NINE; d = buf[++p]) {
        if (digits < 15) { mantissa = mantissa * 10 + (d - C.ZERO); exp10--; if (mantissa !== 0) digits++; } else digits++;
      }
    }
    let exact = digits <= 15;
    const e = buf[p];
    if (e === C.E_LOWER || e === C.E_UPPER) {
      p++;
      let expNegative = false;
      if (buf[p] === C.PLUS || buf[p] === C.MINUS) { expNegative = buf[p] === C.MINUS; p++; }
      const x0 = buf[p];
      if (!(x0 >= C.ZERO && x0 <= C.NINE)) { this.pos = p; this.fail('expected a digit in the exponent'); }
      let x = 0;
      for (let d = buf[p]; d >= C.ZERO && d <= C.NINE; d = buf[++p]) if (x < 1e6) x = x * 10 + (d - C.ZERO);
      exp10 += expNegative ? -x : x;
    }
    this.pos = p;
    if (exact && mantissa === 0) return negative ? -0 : 0;
    exact = exact && exp10 >= -22 && exp10 <= 22;
    if (exact) {
      const v = exp10 >= 0 ? mantissa * POW10[exp10] : mantissa / POW10[-exp10];
      return negative ? -v : v;
    }
    return Number(buf.toString('latin1', start, p));
  }

  /** A string in double quotes, with its escapes; control characters are refused as JSON does. */
  private string(): string {
    const buf = this.buf;
    let p = this.pos + 1;
    const start = p;
    for (;;) {
      const b = buf[p];
      if (b === undefined) { this.pos = p; this.fail('the JSON ends inside a string'); }
      if (b === C.QUOTE) {
        this.pos = p + 1;
        return buf.toString('utf8', start, p);
      }
      if (b === C.BACKSLASH) break;
      if (b < 0x20) { this.pos = p; this.fail('a control character must be escaped in a JSON string'); }
      p++;
    }
    let out = buf.toString('utf8', start, p);
    let runStart = p;
    for (;;) {
      const b = buf[p];
      if (b === undefined) { this.pos = p; this.fail('the JSON ends inside a string'); }
      if (b === C.QUOTE) {
        out += buf.toString('utf8', runStart, p);
        this.pos = p + 1;
        return out;
      }
      if (b < 0x20) { this.pos = p; this.fail('a control character must be escaped in a JSON string'); }
      if (b !== C.BACKSLASH) { p++; continue; }
      out += buf.toString('utf8', runStart, p);
      const esc = buf[p + 1];
      switch (esc) {
        case 0x22: out += '"'; break;
        case 0x5c: out += '\\'; break;
        case 0x2f: out += '/'; break;
        case 0x62: out += '\b'; break;
        case 0x66: out += '\f'; break;
        case 0x6e: out += '\n'; break;
        case 0x72: out += '\r'; break;
        case 0x74: out += '\t'; break;
        case 0x75: {
          const hex = buf.toString('latin1', p + 2, p + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) { this.pos = p; this.fail('expected four hex digits after \\u'); }
          out += String.fromCharCode(parseInt(hex, 16));
          p += 4;
          break;
        }
        default:
          this.pos = p;
          this.fail('an unknown escape in a JSON string');
      }
      p += 2;
      runStart = p;
    }
  }
}

/** True for a body of nothing but whitespace (and a byte order mark). */
function isBlank(buf: Buffer): boolean {
  let i = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  for (; i < buf.length; i++) {
    const b = buf[i];
    if (b !== C.SPACE && b !== C.LF && b !== C.CR && b !== C.TAB) return false;
  }
  return true;
}

/** Parses a whole JSON text at once (a request part, a small body). */
export function parseJson(buf: Buffer, part?: string): unknown {
  const parser = new Parser(buf, part);
  parser.step(Infinity);
  return parser.value();
}

/**
 * Parses a JSON body in slices of SLICE_BYTES, letting the event loop run between them, so that
 * a body of tens of megabytes never holds up other requests (GET /health among them).
 */
export async function parseJsonBody(buf: Buffer, part?: string): Promise<unknown> {
  if (isBlank(buf)) throw new ServiceError('MALFORMED_BODY', { reason: 'empty' });
  const parser = new Parser(buf, part);
  while (!parser.step(SLICE_BYTES)) await new Promise((resolve) => setImmediate(resolve));
  return parser.value();
}

/**
 * Finds and masks sensitive values in prompt text: e-mail addresses, phone numbers, payment card
 * numbers, IBANs and credentials. Shared by the `ai-guardrails` policy (prompts on their way to the
 * provider) and by anything else that must not keep such values, e.g. prompt excerpts in the call
 * log — one implementation, so what is masked cannot drift between the two.
 *
 * Each kind has a precise rule (documented on its detector) so a test can hold both sides: what is
 * masked and the near-miss that is not.
 *
 * Time: these patterns are fixed here, never taken from config, so they run on the built-in engine
 * for speed; each is written to be linear in the text (a literal or a single character class
 * starts every attempt, repetitions are bounded or end the pattern, no nested unbounded
 * quantifier), and the e-mail and `name=value` detectors are hand-written scans because the usual
 * regular expressions for them are quadratic on long runs of letters. A test runs every detector
 * on hostile input. Operator-supplied patterns never come here: they run on RE2 (see index.ts).
 */

export const MASK_KINDS = ['email', 'phone', 'card', 'secret', 'iban'] as const;
export type MaskKind = (typeof MASK_KINDS)[number];

export const DEFAULT_MASK_LABELS: Readonly<Record<MaskKind, string>> = Object.freeze({
  email: '[EMAIL]',
  phone: '[PHONE]',
  card: '[CARD]',
  secret: '[SECRET]',
  iban: '[IBAN]',
});

/** A found value: [start, end) in UTF-16 code units of the text. */
export interface SensitiveSpan {
  readonly start: number;
  readonly end: number;
  readonly kind: MaskKind;
}

export interface MaskResult {
  readonly text: string;
  /** How many values of each kind were replaced; kinds with none are absent. */
  readonly counts: Partial<Record<MaskKind, number>>;
}

type Detector = (text: string, out: SensitiveSpan[]) => void;

// ---------------------------------------------------------------------------------------------
// Character helpers.

const WORD_CHAR = /[\p{L}\p{N}_]/u;

/** A letter, digit or underscore (any script); an ASCII fast path keeps the common case cheap. */
function isWordChar(ch: string): boolean {
  if (ch === '') return false;
  const c = ch.charCodeAt(0);
  if (c < 128) return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
  return WORD_CHAR.test(ch);
}

function isDigit(ch: string): boolean {
  return ch.length === 1 && ch >= '0' && ch <= '9';
}

/** The code point that ends just before `i` (a surrogate pair is one character), or ''. */
function charBefore(text: string, i: number): string {
  if (i <= 0) return '';
  const low = text.charCodeAt(i - 1);
  if (low >= 0xdc00 && low <= 0xdfff && i >= 2) return text.slice(i - 2, i);
  return text.charAt(i - 1);
}

function charAfter(text: string, i: number): string {
  const cp = text.codePointAt(i);
  return cp === undefined ? '' : String.fromCodePoint(cp);
}

/**
 * A number-like value stands alone: not glued to a letter, digit or underscore, and not the tail
 * of a longer number written with separators ("12-555-123-4567" and "12 555 123 4567" are not
 * phone numbers).
 */
function aloneBefore(text: string, start: number): boolean {
  const b = charBefore(text, start);
  if (isWordChar(b) || b === '+') return false;
  return !((b === '-' || b === '.' || b === '/' || b === ' ') && isDigit(charBefore(text, start - 1)));
}

/** …nor the head of one: after the value a space may precede more digits (a year, a reference). */
function aloneAfter(text: string, end: number): boolean {
  const a = charAfter(text, end);
  if (isWordChar(a)) return false;
  return !((a === '-' || a === '.' || a === '/') && isDigit(text.charAt(end + 1)));
}

/** A token starts a value: what precedes it is not part of a longer identifier. */
function tokenStart(text: string, start: number, alsoNot = ''): boolean {
  const b = charBefore(text, start);
  return !isWordChar(b) && (b === '' || !alsoNot.includes(b));
}

function digitsOf(s: string): string {
  return s.replace(/[^0-9]/g, '');
}

/**
 * Runs a global regular expression and keeps the matches `accept` turns into a span. After a
 * refused candidate the search goes on just after it (a valid value may start inside it), past
 * any digits, unless `resume` is 'end' (the match was a maximal run: nothing valid starts inside
 * it, and restarting inside would make the scan quadratic).
 */
function scan(
  re: RegExp,
  text: string,
  out: SensitiveSpan[],
  accept: (m: RegExpExecArray) => readonly [number, number] | undefined,
  kind: MaskKind,
  resume: 'next' | 'end' = 'next',
): void {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const span = accept(m);
    if (span !== undefined) {
      out.push({ start: span[0], end: span[1], kind });
      re.lastIndex = Math.max(span[1], m.index + 1);
    } else if (resume === 'end') {
      re.lastIndex = Math.max(m.index + m[0].length, m.index + 1);
    } else {
      // No detector run here accepts a value that follows a digit (aloneBefore, tokenStart), so
      // no start inside the digit run that begins here can be accepted: skipping the run keeps
      // long runs of digits linear.
      let i = m.index + 1;
      while (isDigit(text.charAt(i))) i++;
      re.lastIndex = i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// E-mail: local@domain with a dotted domain whose last label is 2+ letters (RFC 5321 §4.1.2, with
// the UTF-8 local parts and domain labels of RFC 6531; quoted local parts are not matched). The
// scan starts at each '@' and widens left over local-part characters and right over domain
// characters; neither set contains '@', so every character is looked at at most twice.

const LOCAL_ASCII = new Uint8Array(128);
const DOMAIN_ASCII = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  LOCAL_ASCII[c] = alnum || "._%+'-".includes(String.fromCharCode(c)) ? 1 : 0;
  DOMAIN_ASCII[c] = alnum || c === 46 || c === 45 ? 1 : 0;
}
const NON_ASCII_WORD = /[\p{L}\p{N}\p{M}]/u;
function isLocal(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c < 128 ? LOCAL_ASCII[c] === 1 : NON_ASCII_WORD.test(text.charAt(i));
}
function isDomain(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c < 128 ? DOMAIN_ASCII[c] === 1 : NON_ASCII_WORD.test(text.charAt(i));
}
const LABEL = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}-]{0,61}[\p{L}\p{N}\p{M}])?$/u;
const TLD = /^\p{L}[\p{L}\p{M}]{1,62}$/u;

function validDomain(d: string): boolean {
  const labels = d.split('.');
  return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && TLD.test(labels[labels.length - 1] ?? '');
}

/**
 * Whether `i` is inside the authority of a URL (scheme://user:password@host): that '@' separates
 * userinfo from the host (RFC 3986 §3.2), it is not an address. Looks back at most 256 characters.
 */
function inUrlAuthority(text: string, i: number): boolean {
  for (let k = i - 1; k >= 0 && k >= i - 256; k--) {
    const ch = text.charAt(k);
    if (ch === '/') return k >= 2 && text.startsWith('://', k - 2);
    if (ch === ' ' || ch === '\n' || ch === '\t' || ch === '@') return false;
  }
  return false;
}

const findEmails: Detector = (text, out) => {
  const n = text.length;
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let s = at;
    while (s > 0 && isLocal(text, s - 1)) s--;
    while (s < at && (text.charAt(s) === '.' || text.charAt(s) === "'")) s++;
    if (s === at || text.charAt(at - 1) === '.') continue;
    if (inUrlAuthority(text, s)) continue;
    let e = at + 1;
    let lastDot = -1;
    for (; e < n && isDomain(text, e); e++) if (text.charCodeAt(e) === 46) lastDot = e;
    while (e > at + 1 && (text.charAt(e - 1) === '.' || text.charAt(e - 1) === '-')) e--;
    // Cheap refusal before any slicing: a domain has a dot.
    if (lastDot === -1) continue;
    if (!validDomain(text.slice(at + 1, e))) continue;
    out.push({ start: s, end: e, kind: 'email' });
  }
};

// ---------------------------------------------------------------------------------------------
// Phone numbers. Rules:
// - international: '+', country code, then digits with optional single spaces, dots, hyphens or a
//   parenthesised group; 8 to 15 digits in all (E.164 allows at most 15). With or without separators.
// - North American: 3-3-4 digits with separators, the area code optionally in parentheses, an
//   optional leading "1-": (555) 123-4567, 555-123-4567, 555.123.4567.
// - national with a trunk prefix: 0, then groups split by ONE kind of separator (space, dot,
//   hyphen or slash), 9 to 12 digits: 020 7946 0958, 06 12 34 56 78, 030/1234567. A date
//   (01.02.2024: 8 digits) is too short, and a date and time mixes separators.
// A bare run of digits without '+' is never a phone number here: it cannot be told apart from an
// order or account number. A candidate followed by more digit groups (a year, a reference) is
// retried without its trailing groups before it is given up.

const INTL_PHONE = /\+\d[\d ().-]{5,22}\d/g;
const NANP_PHONE = /(?:\b1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}/g;
const TRUNK_PHONE = /\b0\d{1,4}([ ./-])\d{2,8}(?:\1\d{2,8}){0,4}/g;

function wellFormedIntl(s: string): boolean {
  if (/[ .-]{2}|\(\)|[ .-]\)|\([ .-]/.test(s)) return false;
  let depth = 0;
  for (const ch of s) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (depth < 0 || depth > 1) return false;
  }
  if (depth !== 0) return false;
  const n = digitsOf(s).length;
  return n >= 8 && n <= 15;
}

/** Drops the last separator-delimited group (and any separator or bracket left dangling). */
function withoutLastGroup(s: string): string {
  const cut = Math.max(s.lastIndexOf(' '), s.lastIndexOf('.'), s.lastIndexOf('-'), s.lastIndexOf('/'));
  if (cut <= 0) return '';
  return s.slice(0, cut).replace(/[ .\-/(]+$/, '');
}

function shrinkToValid(text: string, start: number, candidate: string, valid: (s: string) => boolean): readonly [number, number] | undefined {
  if (!aloneBefore(text, start)) return undefined;
  for (let s = candidate; s.length > 0; s = withoutLastGroup(s)) {
    if (valid(s) && aloneAfter(text, start + s.length)) return [start, start + s.length];
  }
  return undefined;
}

const findPhones: Detector = (text, out) => {
  scan(INTL_PHONE, text, out, (m) => shrinkToValid(text, m.index, m[0], wellFormedIntl), 'phone');
  scan(NANP_PHONE, text, out, (m) => (aloneBefore(text, m.index) && aloneAfter(text, m.index + m[0].length) ? [m.index, m.index + m[0].length] : undefined), 'phone');
  scan(
    TRUNK_PHONE,
    text,
    out,
    (m) =>
      shrinkToValid(text, m.index, m[0], (s) => {
        const n = digitsOf(s).length;
        return n >= 9 && n <= 12 && /[ ./-]/.test(s);
      }),
    'phone',
  );
};

// ---------------------------------------------------------------------------------------------
// Payment cards: 13 to 19 digits (ISO/IEC 7812), contiguous or in groups of 4 (or Amex's 4-6-5)
// split by one kind of separator, starting with 2–6 (the major networks' ranges), and passing the
// Luhn check (ISO/IEC 7812-1 Annex B). The check is what keeps order and invoice numbers (which
// fail it nine times in ten) and runs of other digits unmasked.

const CARD = /\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5}/g;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const findCards: Detector = (text, out) => {
  scan(
    CARD,
    text,
    out,
    (m) => {
      const end = m.index + m[0].length;
      if (!aloneBefore(text, m.index) || !aloneAfter(text, end)) return undefined;
      const d = digitsOf(m[0]);
      return d.charAt(0) >= '2' && d.charAt(0) <= '6' && luhnValid(d) ? [m.index, end] : undefined;
    },
    'card',
  );
};

// ---------------------------------------------------------------------------------------------
// IBAN (ISO 13616): two capital letters, two check digits, 11 to 30 letters or digits, printed
// compact or in groups of four split by single spaces; it must pass the ISO 7064 mod 97-10 check.

const IBAN = /[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?/g;

/** Value of an IBAN character in the mod 97 check: digits as themselves, A=10 … Z=35. */
function ibanValue(c: number): number {
  return c <= 57 ? c - 48 : c - 55;
}

/**
 * The lengths (in characters of `s`, spaces included) at which a prefix of `s` is a valid IBAN:
 * each group boundary and the end. One pass: the check number is the BBAN followed by the
 * country and check digits (ISO 13616-1 §7.3), so a running remainder over the BBAN, completed by
 * the fixed 6-digit tail, tests every prefix.
 */
function validIbanLengths(s: string): number[] {
  const c0 = s.charCodeAt(0);
  const c1 = s.charCodeAt(1);
  const tail = (ibanValue(c0) * 10000 + ibanValue(c1) * 100 + ibanValue(s.charCodeAt(2)) * 10 + ibanValue(s.charCodeAt(3))) % 97;
  const out: number[] = [];
  let rem = 0;
  let compact = 4;
  for (let i = 4; i <= s.length; i++) {
    const c = s.charCodeAt(i);
    if (i === s.length || c === 32) {
      if (compact >= 15 && compact <= 34 && (rem * 1_000_000 + tail) % 97 === 1) out.push(i);
      continue;
    }
    const v = ibanValue(c);
    rem = v >= 10 ? (rem * 100 + v) % 97 : (rem * 10 + v) % 97;
    compact++;
  }
  return out;
}

export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, '');
  return /^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(s) && validIbanLengths(s).includes(s.length);
}

const findIbans: Detector = (text, out) => {
  scan(
    IBAN,
    text,
    out,
    (m) => {
      if (!tokenStart(text, m.index)) return undefined;
      const lengths = validIbanLengths(m[0]);
      for (let k = lengths.length - 1; k >= 0; k--) {
        const end = m.index + (lengths[k] ?? 0);
        if (!isWordChar(charAfter(text, end))) return [m.index, end];
      }
      return undefined;
    },
    'iban',
  );
};

// ---------------------------------------------------------------------------------------------
// Credentials. Well-known token shapes (each vendor documents its prefix), PEM private keys, JWTs,
// Bearer tokens, passwords in URLs, and `name=value` / `name: value` pairs whose name says secret.

/** Shannon entropy in bits per character. */
export function entropyBits(s: string): number {
  const freq = new Map<string, number>();
  for (const ch of s) freq.set(ch, (freq.get(ch) ?? 0) + 1);
  const n = [...s].length;
  let h = 0;
  for (const f of freq.values()) {
    const p = f / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Looks generated rather than written: letters mixed with digits, varied enough. */
function looksRandom(v: string): boolean {
  return v.length >= 16 && /[A-Za-z]/.test(v) && /[0-9]/.test(v) && entropyBits(v) >= 3;
}

/** Upper- and lower-case letters and digits: a base62/base64 key, not a kebab-case phrase. */
function mixedCase(v: string): boolean {
  return /[A-Z]/.test(v) && /[a-z]/.test(v) && /[0-9]/.test(v);
}

interface TokenShape {
  readonly re: RegExp;
  /** The capture group that is the secret (0: the whole match). */
  readonly group?: number;
  /** Characters that, before the match, mean it is the tail of a longer word. */
  readonly notAfter?: string;
  readonly check?: (value: string) => boolean;
  /** The match is a maximal run: resume after it when refused. */
  readonly run?: true;
}

const TOKEN_SHAPES: readonly TokenShape[] = [
  // PEM private keys (RFC 7468 §2), RSA/EC/OPENSSH/ENCRYPTED/PGP variants; a key cut off before its
  // END line is masked to the end of the text, since what is there is still key material.
  { re: /-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----|$)/g },
  // JWT / JWS compact form (RFC 7515 §7.1): base64url header and payload, both JSON objects, so
  // both start "eyJ" ('{"'); the signature may be empty (alg none, RFC 7519 §6.1).
  {
    re: /eyJ[A-Za-z0-9_.-]+/g,
    notAfter: '-',
    run: true,
    check: (v) => {
      const parts = v.replace(/\.+$/, '').split('.');
      return parts.length >= 2 && parts.length <= 5 && (parts[0]?.length ?? 0) >= 10 && (parts[1]?.length ?? 0) >= 10 && (parts[1] ?? '').startsWith('eyJ');
    },
  },
  // OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-api03-…) keys: random base62/base64url.
  { re: /sk-[A-Za-z0-9_-]{20,}/g, notAfter: '-', run: true, check: (v) => mixedCase(v.slice(3)) },
  // Stripe secret and restricted keys.
  { re: /[sr]k_(?:live|test)_[A-Za-z0-9]{16,}/g, run: true },
  // AWS access key ids (the "AKIA"/"ASIA" prefixes of IAM user and temporary credentials).
  { re: /(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/g },
  // GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, fine-grained github_pat_) and GitLab personal tokens.
  { re: /gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}/g, run: true },
  // Slack tokens (xoxb-, xoxp-, xoxa-, xoxo-, xoxs-, xoxr-) and app tokens.
  { re: /xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}/g, run: true },
  // Google API keys.
  { re: /AIza[0-9A-Za-z_-]{35}/g },
  // HTTP Bearer credentials (RFC 6750 §2.1) that look generated.
  { re: /\bBearer[ \t]+([A-Za-z0-9._~+/-]{16,}=*)/dg, group: 1, check: looksRandom, run: true },
  // A password in a URL's userinfo (RFC 3986 §3.2.1): scheme://user:password@host.
  { re: /\b[A-Za-z][A-Za-z0-9+.-]{1,20}:\/\/[^\s:@/]{1,128}:([^\s@/]{1,256})@/dg, group: 1 },
];

/** Where a capture group matched (shapes with a group carry the `d` flag, ES2022 match indices). */
function groupSpan(m: RegExpExecArray, group: number): readonly [number, number] | undefined {
  if (group === 0) return [m.index, m.index + m[0].length];
  return m.indices?.[group];
}

const findTokenShapes: Detector = (text, out) => {
  for (const shape of TOKEN_SHAPES) {
    scan(
      shape.re,
      text,
      out,
      (m) => {
        if (shape.group === undefined && !tokenStart(text, m.index, shape.notAfter)) return undefined;
        const span = groupSpan(m, shape.group ?? 0);
        if (span === undefined) return undefined;
        const value = text.slice(span[0], span[1]);
        if (shape.check !== undefined && !shape.check(value)) return undefined;
        // A JWT run may end with a sentence's full stop: keep it outside the mask.
        let end = span[1];
        while (end > span[0] && text.charAt(end - 1) === '.') end--;
        return [span[0], end];
      },
      'secret',
      shape.run === true ? 'end' : 'next',
    );
  }
};

/**
 * `name=value`, `name: value`, `"name": "value"` where the name contains api_key, apikey,
 * access_key, private_key, secret, token, credential, password or passphrase (any case). The value
 * is masked, the name kept. Password-like names: a value of 6+ characters with a digit or a
 * symbol ("hunter2"; not a word such as "required"). Other names: a value that looks generated —
 * 16+ characters, letters and digits, at least 3 bits of Shannon entropy per character — so
 * `token=refresh` or `max_tokens: 256` stays.
 */
const SECRET_NAME = /(?:api[_-]?key|apikey|access[_-]?key|private[_-]?key|secret|token|credential|passw(?:or)?d|passphrase)/i;
const PASSWORD_NAME = /passw(?:or)?d|passphrase/i;
const IDENT = /[A-Za-z0-9_.-]/;
const VALUE_STOP = new Set([' ', '\t', '\n', '\r', '"', "'", '`', ',', ';', '<', '>', '(', ')', '[', ']', '{', '}', '&']);

const findAssignments: Detector = (text, out) => {
  const n = text.length;
  const trigger = /[:=]/g;
  for (let m = trigger.exec(text); m !== null; m = trigger.exec(text)) {
    const op = m.index;
    // Name: back over up to 4 blanks and a closing quote, then up to 64 identifier characters.
    let i = op;
    for (let k = 0; k < 4 && (text.charAt(i - 1) === ' ' || text.charAt(i - 1) === '\t'); k++) i--;
    if (text.charAt(i - 1) === '"' || text.charAt(i - 1) === "'") i--;
    const nameEnd = i;
    while (i > 0 && nameEnd - i < 64 && IDENT.test(text.charAt(i - 1))) i--;
    const name = text.slice(i, nameEnd);
    if (name === '' || !SECRET_NAME.test(name)) continue;
    // Value: forward over an optional "=" or ":" repeat ("==" is not one), blanks and an opening quote.
    let j = op + 1;
    for (let k = 0; k < 4 && (text.charAt(j) === ' ' || text.charAt(j) === '\t'); k++) j++;
    if (text.charAt(j) === '"' || text.charAt(j) === "'") j++;
    const vStart = j;
    while (j < n && !VALUE_STOP.has(text.charAt(j))) j++;
    // Every character of the value is scanned once: the next trigger is looked for after it.
    trigger.lastIndex = Math.max(j, op + 1);
    let vEnd = j;
    while (vEnd > vStart && text.charAt(vEnd - 1) === '.') vEnd--;
    const value = text.slice(vStart, vEnd);
    const secret = PASSWORD_NAME.test(name) ? value.length >= 6 && /[^A-Za-z]/.test(value) : looksRandom(value);
    if (secret) out.push({ start: vStart, end: vEnd, kind: 'secret' });
  }
};

// ---------------------------------------------------------------------------------------------

const DETECTORS: Readonly<Record<MaskKind, readonly Detector[]>> = {
  email: [findEmails],
  phone: [findPhones],
  card: [findCards],
  secret: [findTokenShapes, findAssignments],
  iban: [findIbans],
};

/** When found values overlap, the merged value is labelled by the first kind of this list. */
const PRIORITY: readonly MaskKind[] = ['secret', 'card', 'iban', 'email', 'phone'];

/**
 * Every sensitive value of the given kinds, sorted and merged: overlapping finds become one span
 * (labelled by the most sensitive kind), so every character any detector flagged is covered.
 */
export function findSensitive(text: string, kinds: readonly MaskKind[]): SensitiveSpan[] {
  const raw: SensitiveSpan[] = [];
  for (const kind of new Set(kinds)) for (const d of DETECTORS[kind]) d(text, raw);
  if (raw.length === 0) return raw;
  raw.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: SensitiveSpan[] = [];
  for (const s of raw) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.start < last.end) {
      const kind = PRIORITY.indexOf(s.kind) < PRIORITY.indexOf(last.kind) ? s.kind : last.kind;
      merged[merged.length - 1] = { start: last.start, end: Math.max(last.end, s.end), kind };
    } else merged.push(s);
  }
  return merged;
}

/**
 * Replaces every value of the given kinds by its label.
 * @example maskText('mail ana@example.com', ['email']) // → { text: 'mail [EMAIL]', counts: { email: 1 } }
 */
export function maskText(text: string, kinds: readonly MaskKind[], labels: Partial<Readonly<Record<MaskKind, string>>> = DEFAULT_MASK_LABELS): MaskResult {
  const spans = findSensitive(text, kinds);
  if (spans.length === 0) return { text, counts: {} };
  const counts: Partial<Record<MaskKind, number>> = {};
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + (labels[s.kind] ?? DEFAULT_MASK_LABELS[s.kind]);
    at = s.end;
    counts[s.kind] = (counts[s.kind] ?? 0) + 1;
  }
  return { text: out + text.slice(at), counts };
}

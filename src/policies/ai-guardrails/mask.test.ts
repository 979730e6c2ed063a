/**
 * Masking, kind by kind: exact expected output for what is masked and for the near-miss that is
 * not. Credential-shaped test values are assembled at run time from parts, so no complete token
 * shape sits in the source for a secret scanner to trip on.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { findSensitive, ibanValid, luhnValid, MASK_KINDS, maskText, type MaskKind } from './mask.ts';

const ALL: readonly MaskKind[] = MASK_KINDS;

interface Case {
  readonly name: string;
  readonly kinds?: readonly MaskKind[];
  readonly in: string;
  readonly out: string;
  readonly counts?: Partial<Record<MaskKind, number>>;
}

function run(cases: readonly Case[]): void {
  for (const c of cases) {
    void test(c.name, () => {
      const r = maskText(c.in, c.kinds ?? ALL);
      assert.equal(r.text, c.out);
      if (c.counts !== undefined) assert.deepEqual(r.counts, c.counts);
    });
  }
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const JWT = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: '1234567890', name: 'Ana' })}.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U`;
const OPENAI_KEY = ['sk', 'proj', 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z'].join('-');
const ANTHROPIC_KEY = ['sk', 'ant', 'api03', 'aB1cD2eF3gH4iJ5kL6mN7oP8'].join('-');
const AWS_KEY = 'AKIA' + 'IOSFODNN7EXAMPLE';
const GITHUB_TOKEN = 'gh' + 'p_' + 'a1B2c3D4e5'.repeat(4);
const GITHUB_PAT = 'github' + '_pat_' + '11ABCDEFG0123456789_abcdefghijklmnop';
const SLACK_TOKEN = 'xo' + 'xb-' + '1234567890-ABCDEFGHIJKLmnop';
const GOOGLE_KEY = 'AI' + 'za' + 'SyA1234567890abcdefghijklmnopqrstuv';
const STRIPE_KEY = 'sk' + '_live_' + '4eC39HqLyjWDarjtT1zdp7dc';
const PEM = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun', 'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK', '-----END RSA PRIVATE KEY-----'].join('\n');

void describe('email', () => {
  run([
    { name: 'plain, sub-addressed and multi-label addresses', in: 'Contact john.doe+tag@example.co.uk or MARY@Example.COM.', out: 'Contact [EMAIL] or [EMAIL].', counts: { email: 2 } },
    { name: 'UTF-8 local part and domain (RFC 6531)', in: 'éric@exemple.fr, user@bücher.de', out: '[EMAIL], [EMAIL]', counts: { email: 2 } },
    { name: 'in angle brackets and quotes', in: 'From: "Ana" <ana@example.org>; \'bo@example.net\'', out: 'From: "Ana" <[EMAIL]>; \'[EMAIL]\'' },
    { name: 'near misses: no dotted domain, no local part, handles', in: 'a@b, foo@localhost, @example.com, x@.com, @ana on social', out: 'a@b, foo@localhost, @example.com, x@.com, @ana on social', counts: {} },
    { name: 'a version pin is not an address', in: 'npm i left-pad@1.3.0', out: 'npm i left-pad@1.3.0' },
  ]);
});

void describe('phone', () => {
  run([
    { name: 'international with spaces', in: 'Call +44 20 7946 0958 today', out: 'Call [PHONE] today', counts: { phone: 1 } },
    { name: 'international with parentheses and hyphen', in: 'US office: +1 (555) 123-4567.', out: 'US office: [PHONE].' },
    { name: 'international without separators', in: 'tel:+33612345678', out: 'tel:[PHONE]' },
    { name: 'international followed by a year: trailing group dropped', in: '+44 20 7946 0958 2024 report', out: '[PHONE] 2024 report' },
    { name: 'North American forms', in: '(555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-0199', out: '[PHONE], [PHONE], [PHONE], [PHONE]', counts: { phone: 4 } },
    { name: 'national with trunk 0', in: 'FR 06 12 34 56 78, UK 020 7946 0958, DE 030/1234567', out: 'FR [PHONE], UK [PHONE], DE [PHONE]', counts: { phone: 3 } },
    { name: 'near miss: bare digit run (order number)', in: 'order 0612345678 shipped', out: 'order 0612345678 shipped', counts: {} },
    { name: 'near miss: dates and times', in: 'on 01.02.2024 10:30, 2024-05-06 and 01/02/2024 12:00', out: 'on 01.02.2024 10:30, 2024-05-06 and 01/02/2024 12:00' },
    { name: 'near miss: tail of a longer number', in: 'ref 12-555-123-4567 and 12 555 123 4567', out: 'ref 12-555-123-4567 and 12 555 123 4567' },
    { name: 'near miss: too few digits after +', in: 'score +12 34', out: 'score +12 34' },
    { name: 'near miss: version and decimal', in: 'v0.12.3 costs 0.99', out: 'v0.12.3 costs 0.99' },
  ]);
});

void describe('card (Luhn-checked)', () => {
  run([
    { name: 'valid numbers: grouped by spaces, by hyphens, contiguous, Amex 4-6-5', in: '4111 1111 1111 1111, 4111-1111-1111-1111, 5500005555555559, 3782 822463 10005', out: '[CARD], [CARD], [CARD], [CARD]', counts: { card: 4 } },
    { name: 'invalid Luhn (an order number) is not masked', in: 'order 4111111111111112', out: 'order 4111111111111112', counts: {} },
    { name: 'a Luhn-valid run outside the card ranges is not masked', in: 'id 1234567812345670', out: 'id 1234567812345670' },
    { name: 'part of a longer digit run is not masked', in: '41111111111111110 and 9 4111111111111111', out: '41111111111111110 and 9 4111111111111111' },
    { name: 'mixed separators are not one number', in: '4111 1111-1111 1111', out: '4111 1111-1111 1111' },
    { name: 'glued to letters is not masked', in: 'x4111111111111111', out: 'x4111111111111111' },
  ]);

  void test('luhnValid', () => {
    assert.equal(luhnValid('79927398713'), true);
    assert.equal(luhnValid('79927398710'), false);
  });
});

void describe('iban (mod-97 checked)', () => {
  run([
    { name: 'grouped and compact', kinds: ['iban'], in: 'IBAN DE89 3704 0044 0532 0130 00, GB82WEST12345698765432.', out: 'IBAN [IBAN], [IBAN].', counts: { iban: 2 } },
    { name: 'followed by a word', kinds: ['iban'], in: 'DE89 3704 0044 0532 0130 00 THANKS', out: '[IBAN] THANKS' },
    { name: 'wrong check digits are not masked', kinds: ['iban'], in: 'DE88 3704 0044 0532 0130 00', out: 'DE88 3704 0044 0532 0130 00', counts: {} },
    { name: 'not in the default kinds', kinds: ['email', 'phone', 'card', 'secret'], in: 'GB82WEST12345698765432', out: 'GB82WEST12345698765432' },
  ]);

  void test('ibanValid', () => {
    assert.equal(ibanValid('GB82 WEST 1234 5698 7654 32'), true);
    assert.equal(ibanValid('GB83 WEST 1234 5698 7654 32'), false);
    assert.equal(ibanValid('GB82'), false);
  });
});

void describe('secret', () => {
  run([
    { name: 'OpenAI project key', in: `key ${OPENAI_KEY} end`, out: 'key [SECRET] end', counts: { secret: 1 } },
    { name: 'Anthropic key', in: `ANTHROPIC_API_KEY=${ANTHROPIC_KEY}`, out: 'ANTHROPIC_API_KEY=[SECRET]', counts: { secret: 1 } },
    { name: 'near miss: kebab-case words after "sk-"', in: 'see task-management-system-for-the-team-2024', out: 'see task-management-system-for-the-team-2024', counts: {} },
    { name: 'AWS access key id', in: `aws ${AWS_KEY}.`, out: 'aws [SECRET].' },
    { name: 'GitHub classic and fine-grained tokens', in: `${GITHUB_TOKEN} ${GITHUB_PAT}`, out: '[SECRET] [SECRET]', counts: { secret: 2 } },
    { name: 'Slack token', in: `token ${SLACK_TOKEN}`, out: 'token [SECRET]' },
    { name: 'Google API key', in: `?key=${GOOGLE_KEY}`, out: '?key=[SECRET]' },
    { name: 'Stripe secret key', in: `stripe ${STRIPE_KEY}`, out: 'stripe [SECRET]' },
    { name: 'JWT, sentence full stop kept', in: `jwt ${JWT}.`, out: 'jwt [SECRET].', counts: { secret: 1 } },
    { name: 'PEM private key', in: `here:\n${PEM}\nthanks`, out: 'here:\n[SECRET]\nthanks', counts: { secret: 1 } },
    { name: 'PEM private key cut short: masked to the end', in: `${PEM.split('\n').slice(0, 2).join('\n')}`, out: '[SECRET]' },
    { name: 'near miss: a public key is not masked', in: '-----BEGIN PUBLIC KEY-----', out: '-----BEGIN PUBLIC KEY-----' },
    { name: 'Bearer token', in: 'Authorization: Bearer abcDEF123456ghiJKL789', out: 'Authorization: Bearer [SECRET]' },
    { name: 'near miss: Bearer followed by prose', in: 'Bearer authentication-is-described-here', out: 'Bearer authentication-is-described-here' },
    { name: 'password in a URL', in: 'postgres://admin:s3cr3t!@db.example.com/app', out: 'postgres://admin:[SECRET]@db.example.com/app', counts: { secret: 1 } },
    { name: 'URL userinfo is not an e-mail address', kinds: ['email', 'secret'], in: 'redis://u:pw0rd@cache.example.com and https://ana@example.com/x', out: 'redis://u:[SECRET]@cache.example.com and https://ana@example.com/x', counts: { secret: 1 } },
    { name: 'key=value with a generated value; name kept', in: 'api_key=9f86d081884c7d659a2feaa0c55ad015 and "client_secret": "Zx81Kq02mVb7Lp93Ty"', out: 'api_key=[SECRET] and "client_secret": "[SECRET]"', counts: { secret: 2 } },
    { name: 'query parameter token', in: 'https://x.example/cb?access_token=Zx81Kq02mVb7Lp93Ty&user=a', out: 'https://x.example/cb?access_token=[SECRET]&user=a' },
    { name: 'password values with a digit or symbol', in: 'password: hunter2, "passwd": "p@ss-word"', out: 'password: [SECRET], "passwd": "[SECRET]"', counts: { secret: 2 } },
    { name: 'near misses: plain words and numbers after secret names', in: 'token=refresh max_tokens: 256 password: required secret_word=swordfish', out: 'token=refresh max_tokens: 256 password: required secret_word=swordfish', counts: {} },
  ]);
});

void describe('several kinds', () => {
  run([
    { name: 'each kind counted', in: `mail ana@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, key ${OPENAI_KEY}`, out: 'mail [EMAIL], call [PHONE], card [CARD], key [SECRET]', counts: { email: 1, phone: 1, card: 1, secret: 1 } },
    { name: 'only the kinds asked for', kinds: ['card'], in: 'ana@example.com 4111111111111111', out: 'ana@example.com [CARD]', counts: { card: 1 } },
    { name: 'no kinds: unchanged', kinds: [], in: 'ana@example.com', out: 'ana@example.com', counts: {} },
  ]);

  void test('custom labels, default for the rest', () => {
    assert.deepEqual(maskText('ana@example.com 4111111111111111', ['email', 'card'], { email: '<email>' }), { text: '<email> [CARD]', counts: { email: 1, card: 1 } });
  });

  void test('overlapping finds become one span, labelled by the most sensitive kind', () => {
    // A JWT-shaped run and a key=value pair over the same characters: one span, one count.
    const text = `token=${JWT}`;
    assert.deepEqual(findSensitive(text, ['secret']).map((s) => [s.start, s.end, s.kind]), [[6, text.length, 'secret']]);
    // A card number inside an e-mail local part: the union is masked once, as the card.
    assert.deepEqual(maskText('4111111111111111@example.com', ['email', 'card']), { text: '[CARD]', counts: { card: 1 } });
  });
});

void describe('time stays linear on hostile text', () => {
  // A quadratic scan of 300 000 characters takes minutes; a linear one takes milliseconds. The
  // bound is loose so a busy machine cannot fail it, and tight enough that a quadratic one does.
  const UNITS = ['a', 'a@', 'a@b.', '1', '1 ', '01/', '+1 ', 'sk-', 'eyJ', 'eyJa.', 'token=', 'token:x', 'api_key = ', '-----BEGIN PRIVATE KEY-----', 'DE89 ', 'x://a:', 'Bearer a1', '4111 ', 'é'];
  for (const u of UNITS) {
    void test(JSON.stringify(u), () => {
      const text = u.repeat(Math.ceil(300_000 / u.length));
      const t0 = performance.now();
      maskText(text, ALL);
      assert.ok(performance.now() - t0 < 3000, `${JSON.stringify(u)} took ${Math.round(performance.now() - t0)} ms`);
    });
  }
});

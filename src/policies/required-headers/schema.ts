import { Type, type Static } from '@sinclair/typebox';

const HeaderRule = Type.Object(
  {
    name: Type.String({
      pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
      description: 'Header name (RFC 9110 §5.1: case-insensitive), e.g. x-tenant. A missing or empty header is refused (REQUIRED_HEADER_MISSING).',
    }),
    pattern: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'ECMAScript regular expression the WHOLE value must match (it is anchored for you: "[0-9]+" means ^(?:[0-9]+)$). Compiled once at load; an invalid or catastrophic-backtracking pattern is a config error. Unset: any value is accepted.',
      }),
    ),
    values: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        description: 'Allowed values (exact, case-sensitive). Unset: any value is accepted. With pattern, both must hold.',
      }),
    ),
    status: Type.Union([Type.Literal(400), Type.Literal(403)], {
      default: 400,
      description:
        '400 when the header is part of the request format (a tenant id, an API version); 403 when it is an access condition (an internal-caller marker). Each status has its own codes: REQUIRED_HEADER_* (400) and REQUIRED_HEADER_*_FORBIDDEN (403).',
    }),
    secret: Type.Boolean({
      default: false,
      description:
        'The header carries a credential: its value is never put in evidence, and neither is the list of allowed values. Default false (the received value is shown, clipped, to help fix it).',
    }),
  },
  { additionalProperties: false, description: 'One required header and what its value must look like.' },
);

/** `required-headers` settings. */
export const RequiredHeadersSchema = Type.Object(
  {
    headers: Type.Array(HeaderRule, {
      minItems: 1,
      description:
        'Headers every request must carry, checked in order; the first failing rule gives the code, and evidence lists every failing header. No default: fails closed on each listed header.',
    }),
  },
  { additionalProperties: false },
);

export type RequiredHeadersConfig = Static<typeof RequiredHeadersSchema>;
export type HeaderRuleConfig = RequiredHeadersConfig['headers'][number];

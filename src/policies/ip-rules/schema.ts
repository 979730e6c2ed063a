import { Type, type Static } from '@sinclair/typebox';

export const IpRulesSchema = Type.Object(
  {
    allow: Type.Array(Type.String(), {
      default: [],
      description: 'CIDRs or addresses allowed. When non-empty, any other client is refused (IP_NOT_ALLOWED): fails closed.',
    }),
    deny: Type.Array(Type.String(), {
      default: [],
      description: 'CIDRs or addresses refused (IP_DENIED). Deny wins over allow.',
    }),
  },
  { additionalProperties: false },
);

export type IpRulesConfig = Static<typeof IpRulesSchema>;

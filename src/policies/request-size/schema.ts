import { Type, type Static } from '@sinclair/typebox';

export const RequestSizeSchema = Type.Object(
  {
    max_bytes: Type.Integer({
      minimum: 0,
      description: 'Largest request body accepted. Checked against Content-Length before the body is read, and counted while a chunked body streams.',
    }),
  },
  { additionalProperties: false },
);

export type RequestSizeConfig = Static<typeof RequestSizeSchema>;

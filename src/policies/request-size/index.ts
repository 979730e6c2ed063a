/** `request-size`: refuses request bodies over a limit with 413 (RFC 9110 §15.5.14). */
import type { PolicyModule } from '../../pipeline/types.ts';
import { decideRequestSize } from './decide.ts';
import { RequestSizeSchema } from './schema.ts';

export const requestSize: PolicyModule<typeof RequestSizeSchema> = {
  type: 'request-size',
  summary: 'Refuses request bodies larger than a limit (413), declared or streamed.',
  schema: RequestSizeSchema,
  compile(config, meta) {
    const max = config.max_bytes;
    return {
      id: meta.id,
      type: 'request-size',
      mode: meta.mode,
      bodyLimit: max,
      decide: (dctx) => decideRequestSize(max, dctx),
    };
  },
};

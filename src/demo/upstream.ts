/**
 * The bundled demo upstream: a tiny orders service. It trusts the gateway and has no auth of its
 * own, except one rule to show an upstream denial: orders of more than 1000 units answer 403
 * from the upstream itself (attributed layer=upstream by the gateway).
 *
 * It also plays a tiny OpenAI-compatible model server under /llm/v1 (the demo's AI provider, so
 * the AI gateway can be tried with no account anywhere): the "demo-echo" model answers
 * `echo: <last user message>`, streamed or not, and a user message containing "overloaded"
 * gets the provider-style 503, to show how a provider's error is attributed.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Order {
  id: string;
  item: string;
  quantity: number;
  created_by: string | null;
}

export async function startDemoUpstream(port: number, host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  const orders: Order[] = [{ id: 'ord_1', item: 'coffee beans', quantity: 2, created_by: 'seed' }];
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    // HEAD is GET without the body (RFC 9110 §9.3.2): the gateway's router admits HEAD wherever it
    // admits GET and says so in Allow, so the upstream must answer it too. Node's response sends
    // the headers of a HEAD answer and drops the body written to it.
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (read && path === '/orders') return send(res, 200, { orders });
    const one = /^\/orders\/([^/]+)$/.exec(path);
    if (read && one !== null) {
      const o = orders.find((x) => x.id === one[1]);
      return o === undefined ? send(res, 404, { error: 'order not found' }) : send(res, 200, o);
    }
    if (req.method === 'POST' && path === '/orders') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: { item?: unknown; quantity?: unknown };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as typeof body;
        } catch {
          return send(res, 400, { error: 'body is not JSON' });
        }
        const quantity = typeof body.quantity === 'number' ? body.quantity : 1;
        if (quantity > 1000) return send(res, 403, { error: 'quantity above your account limit (1000)' });
        const order: Order = {
          id: `ord_${orders.length + 1}`,
          item: typeof body.item === 'string' ? body.item : 'unnamed',
          quantity,
          created_by: typeof req.headers['x-forwarded-for'] === 'string' ? req.headers['x-forwarded-for'] : null,
        };
        orders.push(order);
        send(res, 201, order);
      });
      return;
    }
    if (req.method === 'POST' && path === '/llm/v1/chat/completions') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => demoModel(res, Buffer.concat(chunks).toString('utf8'), send));
      return;
    }
    send(res, 404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

interface DemoChat {
  model?: string;
  stream?: boolean;
  messages?: { role?: string; content?: unknown }[];
}

function demoModel(res: ServerResponse, text: string, send: (res: ServerResponse, status: number, body: unknown) => void): void {
  let body: DemoChat;
  try {
    body = JSON.parse(text) as DemoChat;
  } catch {
    send(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error', param: null, code: null } });
    return;
  }
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  const said = typeof last?.content === 'string' ? last.content : JSON.stringify(last?.content ?? '');
  if (said.includes('overloaded')) {
    res.setHeader('x-request-id', 'req_demo_overloaded');
    send(res, 503, { error: { message: 'The demo model is overloaded. Please try again later.', type: 'server_error', param: null, code: 'overloaded' } });
    return;
  }
  const reply = `echo: ${said}`;
  const usage = { prompt_tokens: Math.ceil(said.length / 4), completion_tokens: Math.ceil(reply.length / 4), total_tokens: 0 };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  const id = `chatcmpl-demo${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = body.model ?? 'demo-echo';
  if (body.stream !== true) {
    send(res, 200, { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }], usage });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta: object, finish: string | null): string =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.write(chunk({ role: 'assistant', content: '' }, null));
  for (const word of reply.split(/(?<= )/)) res.write(chunk({ content: word }, null));
  res.write(chunk({}, 'stop'));
  res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
  res.end('data: [DONE]\n\n');
}

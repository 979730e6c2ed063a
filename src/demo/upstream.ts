/**
 * The bundled demo upstream: a tiny orders service. It trusts the gateway and has no auth of its
 * own, except one rule to show an upstream denial: orders of more than 1000 units answer 403
 * from the upstream itself (attributed layer=upstream by the gateway).
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
    if (req.method === 'GET' && path === '/orders') return send(res, 200, { orders });
    const one = /^\/orders\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && one !== null) {
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
    send(res, 404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

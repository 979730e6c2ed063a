/** Catalog codes of the `ip-rules` policy (merged into the one catalog in src/errors/catalog.ts). */
import type { CatalogEntry } from '../../errors/entry.ts';

export const IP_RULES_CODES = {
  IP_DENIED: {
    status: 403,
    title: 'The client IP address is in a deny list',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Client IP {client_ip} matches deny rule {rule}. If that is not your address, a proxy in front of the gateway may not be listed in trusted_proxies.',
  },
  IP_NOT_ALLOWED: {
    status: 403,
    title: 'The client IP address is not in the allow list',
    layer: 'gateway',
    retryable: false,
    proxyStatus: 'http_request_denied',
    remediation:
      'Client IP {client_ip} (taken from {ip_source}) is not in the allow list; call from an allowed network or add it. If that is not your address, add the proxy in front of the gateway to trusted_proxies.',
  },
} as const satisfies Record<string, CatalogEntry>;

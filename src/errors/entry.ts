/** The shape of a catalog entry; see src/errors/catalog.ts for the rules. */

export type Layer = 'client' | 'gateway' | 'upstream' | 'provider';

/** RFC 9209 §2.3 Proxy Error Types used by Pinpoint. */
export type ProxyErrorType =
  | 'http_request_denied'
  | 'http_request_error'
  | 'destination_not_found'
  | 'destination_unavailable'
  | 'destination_ip_prohibited'
  | 'dns_error'
  | 'connection_refused'
  | 'connection_terminated'
  | 'connection_timeout'
  | 'http_response_timeout'
  | 'http_protocol_error'
  | 'proxy_internal_error'
  | 'http_request_body_size_exceeded';

export interface CatalogEntry {
  /** HTTP status the gateway answers with. */
  readonly status: number;
  /** Short, stable, human title (RFC 9457 `title`). */
  readonly title: string;
  readonly layer: Layer;
  /** Whether sending the same request again may succeed without any change. */
  readonly retryable: boolean;
  readonly proxyStatus: ProxyErrorType;
  /** What to change so the request passes; `{evidence_field}` placeholders are filled in. */
  readonly remediation: string;
  /** Set on a code that is no longer emitted; kept so the code is never reused. */
  readonly retired?: true;
}


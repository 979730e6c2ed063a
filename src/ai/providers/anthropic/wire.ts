/**
 * Anthropic Messages API wire shapes, as sent with `anthropic-version: 2023-06-01`.
 *
 * Why our own types and not `@anthropic-ai/sdk`'s: SDK 1.x types describe API version 2026-10-21,
 * which removed `temperature`, `top_p` and `top_k` (requests carrying them are answered 400, see
 * Anthropic's 2026-10-21 migration notes). The chat mapping pins 2023-06-01, where they are still
 * accepted, so its request type has to keep them. Field names follow the SDK's
 * resources/messages/messages.ts (MessageCreateParamsBase, ContentBlockParam, Tool, ToolChoice,
 * Message, Usage, RawMessageStreamEvent) and the Messages API reference.
 */

/** The `anthropic-version` the chat mapping is written for (see the note above). */
export const ANTHROPIC_VERSION = '2023-06-01';

/** Media types an image block's base64 source accepts (SDK Base64ImageSource.media_type). */
export const ANTHROPIC_IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;
export type AnthropicImageMediaType = (typeof ANTHROPIC_IMAGE_MEDIA_TYPES)[number];

export interface AnthropicTextBlock {
  readonly type: 'text';
  readonly text: string;
}

export interface AnthropicImageBlock {
  readonly type: 'image';
  readonly source:
    | { readonly type: 'base64'; readonly media_type: AnthropicImageMediaType; readonly data: string }
    | { readonly type: 'url'; readonly url: string };
}

export interface AnthropicToolUseBlock {
  readonly type: 'tool_use';
  readonly id: string;
  readonly name: string;
  readonly input: Readonly<Record<string, unknown>>;
}

export interface AnthropicToolResultBlock {
  readonly type: 'tool_result';
  readonly tool_use_id: string;
  readonly content?: string | readonly (AnthropicTextBlock | AnthropicImageBlock)[];
}

export type AnthropicContentBlock = AnthropicTextBlock | AnthropicImageBlock | AnthropicToolUseBlock | AnthropicToolResultBlock;

export interface AnthropicMessageParam {
  readonly role: 'user' | 'assistant';
  readonly content: string | readonly AnthropicContentBlock[];
}

export interface AnthropicTool {
  readonly name: string;
  readonly description?: string;
  readonly input_schema: Readonly<Record<string, unknown>>;
  readonly strict?: boolean;
}

export type AnthropicToolChoice =
  | { readonly type: 'auto'; readonly disable_parallel_tool_use?: boolean }
  | { readonly type: 'any'; readonly disable_parallel_tool_use?: boolean }
  | { readonly type: 'tool'; readonly name: string; readonly disable_parallel_tool_use?: boolean }
  | { readonly type: 'none' };

/** POST /v1/messages body. */
export interface AnthropicMessagesRequest {
  readonly model: string;
  readonly max_tokens: number;
  readonly messages: readonly AnthropicMessageParam[];
  readonly system?: readonly AnthropicTextBlock[];
  readonly stop_sequences?: readonly string[];
  readonly temperature?: number;
  readonly top_p?: number;
  readonly tools?: readonly AnthropicTool[];
  readonly tool_choice?: AnthropicToolChoice;
  readonly metadata?: { readonly user_id: string };
  readonly stream?: boolean;
}

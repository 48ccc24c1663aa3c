// Public API of @codereasoner/data: filled in by its issue.
export const packageName = '@codereasoner/data';
export { ChatClientError, createChatClient } from './chat-client.js';
export type {
  ChatClient,
  ChatClientLogger,
  ChatClientMessage,
  ChatClientOptions,
  ChatClientStats,
  ChatModel,
  ChatRequest,
  ChatResponse,
  ChatRetryEvent,
} from './chat-client.js';

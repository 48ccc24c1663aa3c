import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { encodeChat, renderChat, type ChatMessage, type RenderChatOptions } from './chat.js';
import { CodeReasonerError } from './errors.js';
import { Tokenizer } from './tokenizer.js';

/** A message as chat templates see it: any role the template knows; Qwen3 also reads `reasoning_content`. */
export interface TemplateMessage {
  role: string;
  content: string;
  reasoning_content?: string | undefined;
}

export interface ChatTemplateOptions {
  /** Ends the text with the header the model continues from (`add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** Extra template variables, e.g. `{ enable_thinking: false }` for Qwen3. */
  templateKwargs?: Record<string, unknown>;
}

/** What both chat paths offer the trainers and the chat model: text, ids with an SFT mask, stop and pad ids. */
export interface ChatFormat {
  render(messages: readonly ChatMessage[], options?: RenderChatOptions): string;
  /** Ids of the rendering and a mask that is 1 on the tokens each assistant message generates. */
  encode(
    messages: readonly ChatMessage[],
    options?: RenderChatOptions,
  ): { ids: number[]; assistantMask: number[] };
  /** Generation ends at any of these. */
  readonly stopTokenIds: readonly number[];
  readonly padTokenId: number;
}

/** The from-scratch path: ChatML, stopping at `<|im_end|>` or `<|endoftext|>`. */
export function chatMLFormat(tokenizer: Tokenizer): ChatFormat {
  const special = tokenizer.special;
  return {
    render: (messages, options) => renderChat(messages, options),
    encode: (messages, options) => encodeChat(tokenizer, messages, options),
    stopTokenIds: [special.imEnd, special.eos],
    padTokenId: special.pad,
  };
}

/** A chat template or the model files around it are missing, malformed or unusable. */
export class ChatTemplateError extends CodeReasonerError {
  readonly path: string | undefined;
  constructor(message: string, options: { path?: string; cause?: unknown } = {}) {
    super(
      'CHAT_TEMPLATE_INVALID',
      options.path === undefined ? message : `${options.path}: ${message}`,
      options,
    );
    this.name = 'ChatTemplateError';
    this.path = options.path;
  }
}

/** The JSON files of a Hugging Face model directory that bear on chat and generation. */
export interface ChatTemplateSources {
  /** `tokenizer_config.json`. */
  tokenizerConfig: Record<string, unknown>;
  /** `generation_config.json`, when present. */
  generationConfig?: Record<string, unknown> | undefined;
  /** `config.json`, when present. */
  modelConfig?: Record<string, unknown> | undefined;
  /** `chat_template.jinja` (newer transformers save the template there), when present. */
  templateFile?: string | undefined;
  /** Where the files came from, for error messages. */
  source?: string | undefined;
}

// tokenizer_config.json names these special tokens; transformers passes them to the template.
const SPECIAL_TOKEN_FIELDS = ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const;

/** A token field of tokenizer_config.json: a string or an AddedToken object `{ content }`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const content = (value as Record<string, unknown>)['content'];
    if (typeof content === 'string') return content;
  }
  return undefined;
}

/**
 * A model's own `chat_template` (Qwen2.5, Qwen3, Llama-3, ...) rendered with `@huggingface/jinja`
 * (trim_blocks and lstrip_blocks, as transformers sets them), with the model's eos ids as stop ids.
 */
export class ChatTemplate implements ChatFormat {
  readonly stopTokenIds: readonly number[];
  readonly padTokenId: number;
  readonly bosTokenId: number | undefined;
  /** The template text. */
  readonly source: string;
  private readonly template: Template;
  private readonly variables: Record<string, unknown>;

  private constructor(
    private readonly tokenizer: Tokenizer,
    source: string,
    variables: Record<string, unknown>,
    ids: { stop: number[]; pad: number; bos: number | undefined },
    origin: string | undefined,
  ) {
    this.source = source;
    try {
      this.template = new Template(source);
    } catch (cause) {
      throw new ChatTemplateError(
        `chat_template does not parse (${(cause as Error).message}); fix the template or pass another`,
        { path: origin, cause },
      );
    }
    this.variables = variables;
    this.stopTokenIds = ids.stop;
    this.padTokenId = ids.pad;
    this.bosTokenId = ids.bos;
  }

  /**
   * Reads `tokenizer_config.json` (and `chat_template.jinja`, `generation_config.json`,
   * `config.json` when present) from a model directory.
   */
  static async load(dir: string, tokenizer: Tokenizer): Promise<ChatTemplate> {
    const readJson = async (
      name: string,
      required: boolean,
    ): Promise<Record<string, unknown> | undefined> => {
      const path = join(dir, name);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (cause) {
        if (!required && (cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new ChatTemplateError(`cannot read ${name} (${(cause as Error).message})`, {
          path,
          cause,
        });
      }
      try {
        const json: unknown = JSON.parse(text);
        if (typeof json !== 'object' || json === null || Array.isArray(json))
          throw new Error('not a JSON object');
        return json as Record<string, unknown>;
      } catch (cause) {
        throw new ChatTemplateError(`${name} is not a JSON object (${(cause as Error).message})`, {
          path,
          cause,
        });
      }
    };
    let templateFile: string | undefined;
    try {
      templateFile = await readFile(join(dir, 'chat_template.jinja'), 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new ChatTemplateError(
          `cannot read chat_template.jinja (${(cause as Error).message})`,
          {
            path: join(dir, 'chat_template.jinja'),
            cause,
          },
        );
      }
    }
    return ChatTemplate.fromConfig(
      {
        tokenizerConfig: (await readJson('tokenizer_config.json', true))!,
        generationConfig: await readJson('generation_config.json', false),
        modelConfig: await readJson('config.json', false),
        templateFile,
        source: dir,
      },
      tokenizer,
    );
  }

  static fromConfig(sources: ChatTemplateSources, tokenizer: Tokenizer): ChatTemplate {
    const origin = sources.source;
    const fail = (message: string): never => {
      throw new ChatTemplateError(message, origin === undefined ? {} : { path: origin });
    };
    const config = sources.tokenizerConfig;
    let template = sources.templateFile;
    if (template === undefined) {
      const field = config['chat_template'];
      if (typeof field === 'string') template = field;
      else if (Array.isArray(field)) {
        // transformers' named templates: [{ name, template }], "default" is the one used.
        const named = field.find(
          (t: unknown) =>
            typeof t === 'object' &&
            t !== null &&
            (t as Record<string, unknown>)['name'] === 'default',
        ) as Record<string, unknown> | undefined;
        if (typeof named?.['template'] !== 'string')
          fail('tokenizer_config.json chat_template lists no template named "default"');
        template = named!['template'] as string;
      } else
        return fail(
          'tokenizer_config.json has no chat_template (and there is no chat_template.jinja): a base model without a template cannot render chats; use an instruct model directory or add a template',
        );
    }
    const idOf = (content: string, field: string): number => {
      const id = tokenizer.tokenToId(content);
      if (id === undefined)
        fail(
          `tokenizer_config.json ${field} ${JSON.stringify(content)} is not a token of tokenizer.json`,
        );
      return id!;
    };
    const variables: Record<string, unknown> = {};
    for (const field of SPECIAL_TOKEN_FIELDS) {
      const content = tokenContent(config[field]);
      if (content !== undefined) variables[field] = content;
    }
    const additional = config['additional_special_tokens'];
    variables['additional_special_tokens'] = Array.isArray(additional)
      ? additional.map(tokenContent).filter((t) => t !== undefined)
      : [];

    // transformers' generate stops at generation_config's eos ids, which default to config.json's.
    const eosIds = (
      json: Record<string, unknown> | undefined,
      file: string,
    ): number[] | undefined => {
      const value = json?.['eos_token_id'];
      if (value === undefined || value === null) return undefined;
      const list = Array.isArray(value) ? value : [value];
      if (
        list.length === 0 ||
        list.some((id) => !Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize)
      )
        fail(
          `${file} eos_token_id ${JSON.stringify(value)} must be a token id or a list of them below ${tokenizer.vocabSize}`,
        );
      return list as number[];
    };
    let stop =
      eosIds(sources.generationConfig, 'generation_config.json') ??
      eosIds(sources.modelConfig, 'config.json');
    if (stop === undefined) {
      const eos = variables['eos_token'];
      if (typeof eos !== 'string')
        return fail(
          'no eos id: none of generation_config.json, config.json (eos_token_id) or tokenizer_config.json (eos_token) names one',
        );
      stop = [idOf(eos, 'eos_token')];
    }
    const padToken = variables['pad_token'];
    const padId =
      typeof padToken === 'string'
        ? idOf(padToken, 'pad_token')
        : (([
            sources.generationConfig?.['pad_token_id'],
            sources.modelConfig?.['pad_token_id'],
          ].find((id) => Number.isInteger(id)) as number | undefined) ?? stop[0]!);
    const bos = variables['bos_token'];
    return new ChatTemplate(
      tokenizer,
      template,
      variables,
      {
        stop: [...new Set(stop)],
        pad: padId,
        bos: typeof bos === 'string' ? idOf(bos, 'bos_token') : undefined,
      },
      origin,
    );
  }

  /** The text the model sees, as transformers' `apply_chat_template(..., tokenize=False)`. */
  render(messages: readonly TemplateMessage[], options: ChatTemplateOptions = {}): string {
    messages.forEach((m, i) => {
      if (
        typeof m !== 'object' ||
        m === null ||
        typeof m.role !== 'string' ||
        typeof m.content !== 'string'
      )
        throw new CodeReasonerError(
          'CHAT_MESSAGE_INVALID',
          `messages[${i}] must be { role: string, content: string }, got ${JSON.stringify(m)}`,
        );
    });
    try {
      return this.template.render({
        ...this.variables,
        ...options.templateKwargs,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt === true,
      });
    } catch (cause) {
      throw new ChatTemplateError(
        `the chat template failed to render (${(cause as Error).message})`,
        {
          cause,
        },
      );
    }
  }

  /**
   * Ids of the rendering (special-token text becomes ids, no BOS added: templates write it) and
   * the SFT mask. Each assistant message starts where the rendering of the messages before it with
   * the generation prompt ends (or, when the template writes past turns differently from that
   * prompt, after the header the two share); the text is cut there and each part encoded on its own, so trained
   * tokens are the ones the model produces after that prompt. The mask covers the part up to and
   * including its first special token (the end of turn: `<|im_end|>`, `<|eot_id|>`); what follows
   * (the newline, the next turns) is 0.
   */
  encode(
    messages: readonly TemplateMessage[],
    options: ChatTemplateOptions = {},
  ): { ids: number[]; assistantMask: number[] } {
    const full = this.render(messages, options);
    const cuts: number[] = [];
    messages.forEach((m, i) => {
      if (m.role !== 'assistant') return;
      const prompt = this.render(messages.slice(0, i), {
        ...options,
        addGenerationPrompt: true,
      });
      let start = prompt.length;
      if (!full.startsWith(prompt)) {
        // The generation prompt can differ from how the template writes a past turn (Qwen3 with
        // enable_thinking=false pre-fills an empty thinking block that earlier turns do not
        // have): the turn then starts after the header both share.
        const before = this.render(messages.slice(0, i), {
          ...options,
          addGenerationPrompt: false,
        });
        let shared = 0;
        if (full.startsWith(before) && prompt.startsWith(before)) {
          while (
            before.length + shared < prompt.length &&
            prompt[before.length + shared] === full[before.length + shared]
          )
            shared++;
        }
        if (shared === 0) {
          throw new ChatTemplateError(
            `assistant messages[${i}]: neither the template's rendering of the earlier messages with the generation prompt nor without it (plus a shared header) begins the whole conversation, so the turn's tokens cannot be told apart; masks need a template whose earlier turns do not change`,
          );
        }
        start = before.length + shared;
      }
      if (start < (cuts[cuts.length - 1] ?? 0))
        throw new ChatTemplateError(
          `assistant messages[${i}] starts before the previous assistant message in the rendering`,
        );
      cuts.push(start);
    });
    const ids: number[] = [];
    const assistantMask: number[] = [];
    const bounds = [0, ...cuts, full.length];
    for (let k = 0; k + 1 < bounds.length; k++) {
      const part = this.tokenizer.encode(full.slice(bounds[k], bounds[k + 1]));
      if (k === 0) {
        for (const id of part) {
          ids.push(id);
          assistantMask.push(0);
        }
        continue;
      }
      const end = part.findIndex((id) => this.tokenizer.isSpecial(id));
      if (end < 0) {
        throw new ChatTemplateError(
          `assistant message ${k} of the conversation has no end-of-turn special token after it in the rendering; the mask cannot tell where the turn ends`,
        );
      }
      part.forEach((id, j) => {
        ids.push(id);
        assistantMask.push(j <= end ? 1 : 0);
      });
    }
    return { ids, assistantMask };
  }
}

/**
 * The chat layout of a model directory: its own chat template (`chat_template.jinja`, or
 * `chat_template` in tokenizer_config.json) with its eos ids as stop ids; otherwise ChatML when the
 * tokenizer has the ChatML tokens (the from-scratch path and checkpoints written by it); otherwise
 * a format whose every use throws a `ChatTemplateError` saying what is missing (a base model
 * without a template still loads for scoring and plain-text generation).
 */
export async function loadChatFormat(dir: string, tokenizer: Tokenizer): Promise<ChatFormat> {
  const hasTemplateFile = await readFile(join(dir, 'chat_template.jinja'), 'utf8').then(
    () => true,
    () => false,
  );
  let config: Record<string, unknown> | undefined;
  try {
    config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ChatTemplateError(
        `cannot read tokenizer_config.json (${(cause as Error).message})`,
        { path: join(dir, 'tokenizer_config.json'), cause },
      );
  }
  const templateField = config?.['chat_template'];
  if (hasTemplateFile || (templateField !== undefined && templateField !== null))
    return ChatTemplate.load(dir, tokenizer);
  if (tokenizer.hasChatML) return chatMLFormat(tokenizer);
  const fail = (): never => {
    throw new ChatTemplateError(
      'the model has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja) and its tokenizer has no ChatML tokens, so chats cannot be rendered; use an instruct model directory or add a template',
      { path: dir },
    );
  };
  return {
    render: fail,
    encode: fail,
    get stopTokenIds(): readonly number[] {
      return fail();
    },
    get padTokenId(): number {
      return fail();
    },
  };
}

/** A Hugging Face model directory's tokenizer and chat template. */
export async function loadHfChat(
  dir: string,
): Promise<{ tokenizer: Tokenizer; chat: ChatTemplate }> {
  const tokenizer = await Tokenizer.load(join(dir, 'tokenizer.json'));
  return { tokenizer, chat: await ChatTemplate.load(dir, tokenizer) };
}

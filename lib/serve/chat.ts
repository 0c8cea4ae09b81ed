// Chat prompts from the model's own template (GGUF `tokenizer.chat_template`,
// a Hugging Face Jinja template), rendered by @huggingface/jinja.
import { Template } from '@huggingface/jinja';
import { QkError } from '../errors';
import type { Model } from '../model/model';

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

export class ChatTemplate {
  private readonly template: Template;
  private readonly bosText: string;
  private readonly eosText: string;

  /** `source` overrides the file's template; a model with neither gets a QkError saying so. */
  constructor(
    private readonly model: Model,
    source?: string,
  ) {
    const text = source ?? model.metadata['tokenizer.chat_template'];
    if (typeof text !== 'string' || text.length === 0) {
      throw new QkError('ERR_QK_ARG', `${model.path} has no tokenizer.chat_template; give one with --chat-template FILE to serve /v1/chat/completions`);
    }
    try {
      this.template = new Template(text);
    } catch (e) {
      throw new QkError('ERR_QK_ARG', `the chat template does not parse: ${(e as Error).message}`);
    }
    const t = model.tokenizer;
    const piece = (id: number | null) => (id === null ? '' : model.detokenize([id], { unparseSpecial: true }));
    this.bosText = piece(t.bos);
    this.eosText = piece(t.eos);
  }

  /** The prompt text for `messages`, ending where the assistant's answer begins. */
  render(messages: readonly ChatMessage[]): string {
    try {
      return this.template.render({ messages, bos_token: this.bosText, eos_token: this.eosText, add_generation_prompt: true });
    } catch (e) {
      throw new QkError('ERR_QK_ARG', `the chat template failed on these messages: ${(e as Error).message}`);
    }
  }

  /** Token ids of a rendered prompt: special tokens' text is matched, and no second BOS when the template wrote one. */
  tokenize(prompt: string): number[] {
    const startsWithBos = this.bosText.length > 0 && prompt.startsWith(this.bosText);
    return this.model.tokenize(prompt, { parseSpecial: true, ...(startsWithBos ? { addBos: false } : {}) });
  }
}

import { anthropic } from './anthropic/index.ts';
import { azureOpenAI } from './azure-openai/index.ts';
import type { ProviderAdapter } from './contract.ts';
import { gemini } from './gemini/index.ts';
import { openai, openaiCompatible } from './openai/index.ts';
import { volcengine } from './volcengine/index.ts';

/**
 * The registry: Channel `spec.provider` -> adapter. A provider the schema knows but no module
 * serves yet is refused at render (core/config/render.ts asks `hasAdapter`).
 */
const ADAPTERS: ReadonlyMap<string, ProviderAdapter> = new Map(
  [openai, openaiCompatible, azureOpenAI, anthropic, gemini, volcengine].map((a) => [a.name, a]),
);

export function adapterFor(provider: string): ProviderAdapter {
  const a = ADAPTERS.get(provider);
  if (!a) throw new Error(`no adapter for provider ${provider}`);
  return a;
}

export function hasAdapter(provider: string): boolean {
  return ADAPTERS.has(provider);
}

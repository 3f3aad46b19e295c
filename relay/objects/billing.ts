import type { ModelPricing } from '../../core/config/relay-config.ts';
import type { TokenCounts } from '../../core/usage.ts';
import type { ChannelRuntime } from '../runtime.ts';
import type { ObjectCall } from './upstream.ts';

/**
 * A completed batch is charged once, fleet-wide: the first retrieve (on any pod) that sees it
 * `completed` with `usage` claims it in the pin store and charges its tokens at the model's batch
 * prices (`pricing.batchInputPer1M` / `batchOutputPer1M`, else the regular per-token prices) —
 * to the key's and the channel's spend, the token and cost metrics, and that request's record.
 * The model is the one the input file was uploaded for, else the channel's model whose upstream
 * name the batch reports. A batch nobody retrieves after it completed is not charged.
 */
export async function batchCharge(
  call: ObjectCall,
  ch: ChannelRuntime,
  id: string,
  pinnedModel: string | undefined,
  batch: Record<string, unknown>,
): Promise<{ tokens: TokenCounts; cost: number } | undefined> {
  const usage = batch.usage as BatchUsage | undefined;
  if (batch.status !== 'completed' || typeof usage?.input_tokens !== 'number') return undefined;
  const { deps } = call;
  const claimed = await (deps.pins.claimBilling?.('batch', id) ?? Promise.resolve(false)).catch((err) => {
    deps.log.warn(
      { err, batch: id },
      'a completed batch could not be claimed for billing; retried on the next retrieve',
    );
    return false;
  });
  if (!claimed) return undefined;
  const model = modelOf(ch, pinnedModel, typeof batch.model === 'string' ? batch.model : undefined);
  const tokens: TokenCounts = {
    promptTokens: usage.input_tokens,
    completionTokens: usage.output_tokens ?? 0,
    cachedTokens: usage.input_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: 0,
    reasoningTokens: usage.output_tokens_details?.reasoning_tokens ?? 0,
  };
  const cost = model ? batchCost(tokens, model.pricing) : 0;
  const name = model?.name ?? 'other';
  call.model = model?.name;
  const labels = { channel: ch.config.id, model: name };
  if (tokens.promptTokens > 0) deps.metrics.tokens.inc({ ...labels, type: 'prompt' }, tokens.promptTokens);
  if (tokens.completionTokens > 0)
    deps.metrics.tokens.inc({ ...labels, type: 'completion' }, tokens.completionTokens);
  if (cost > 0) deps.metrics.cost.inc(labels, cost);
  void deps.store
    .recordSpend({
      channelId: ch.config.id,
      keyId: call.req.client.keyId,
      model: name,
      cost,
      promptTokens: tokens.promptTokens,
      completionTokens: tokens.completionTokens,
      at: Date.now(),
    })
    .catch((err) => deps.log.warn({ err }, 'state store: recordSpend failed'));
  return { tokens, cost };
}

interface BatchUsage {
  input_tokens: number;
  output_tokens?: number;
  input_tokens_details?: { cached_tokens?: number };
  output_tokens_details?: { reasoning_tokens?: number };
}

/** Batch prices, per 1M tokens: the batch ones when set, else the regular ones. */
export function batchCost(t: TokenCounts, p: ModelPricing): number {
  const input = p.batchInputPer1M ?? p.inputPer1M;
  const output = p.batchOutputPer1M ?? p.outputPer1M;
  return (t.promptTokens * input + t.completionTokens * output) / 1e6;
}

function modelOf(ch: ChannelRuntime, pinned: string | undefined, reported: string | undefined) {
  const models = ch.config.models;
  const named = pinned === undefined ? undefined : models.find((m) => m.name === pinned);
  if (named || reported === undefined) return named;
  // OpenAI reports the snapshot (`gpt-4o-mini-2024-07-18`) of the name it was asked for.
  return models
    .filter((m) => reported === m.upstreamName || reported.startsWith(`${m.upstreamName}-`))
    .sort((a, b) => b.upstreamName.length - a.upstreamName.length)[0];
}

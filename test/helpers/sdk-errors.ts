import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

/** The SDK's API error a call was expected to end with; any other outcome fails the test. */
async function refusedWith<E extends Error>(
  kind: abstract new (...args: never[]) => E,
  p: Promise<unknown>,
): Promise<E> {
  try {
    await p;
  } catch (err) {
    if (err instanceof kind) return err;
    throw err;
  }
  throw new Error('the request was expected to fail');
}

/** The `openai` SDK's APIError of a call expected to fail. */
export const refused = (p: Promise<unknown>) =>
  refusedWith<InstanceType<typeof OpenAI.APIError>>(OpenAI.APIError, p);

/** The `@anthropic-ai/sdk` APIError of a call expected to fail. */
export const refusedAnthropic = (p: Promise<unknown>) =>
  refusedWith<InstanceType<typeof Anthropic.APIError>>(Anthropic.APIError, p);

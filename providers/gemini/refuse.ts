// What a request asks for that Gemini cannot do: the contract's UntranslatableError, so the client
// gets a 400 in OpenAI's error shape with `param` naming the field (never a silent drop).
import { UntranslatableError } from '../contract.ts';

export function refuse(field: string, message: string): never {
  throw new UntranslatableError(field, message);
}

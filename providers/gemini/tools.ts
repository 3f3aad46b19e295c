// OpenAI `tools` and `tool_choice` -> Gemini `tools[].functionDeclarations` and
// `toolConfig.functionCallingConfig`.
import { asArray, asObject, isObject, type Json } from './json.ts';
import { refuse } from './refuse.ts';

export function translateTools(tools: unknown): Json[] | undefined {
  if (tools === undefined || tools === null) return undefined;
  if (!Array.isArray(tools)) refuse('tools', "'tools' must be an array.");
  if (tools.length === 0) return undefined;
  const declarations = tools.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObject(t) || t['type'] !== 'function') {
      refuse(
        `${at}.type`,
        `Tool type '${String(asObject(t)?.['type'])}' is not supported by gemini channels.`,
      );
    }
    const fn = asObject(t['function']);
    if (typeof fn?.['name'] !== 'string') refuse(`${at}.function.name`, `'${at}.function.name' is required.`);
    const d: Json = { name: fn['name'] };
    if (typeof fn['description'] === 'string') d['description'] = fn['description'];
    // JSON Schema as given (Gemini's parametersJsonSchema), so nothing of the schema is lost.
    if (fn['parameters'] !== undefined) d['parametersJsonSchema'] = fn['parameters'];
    return d;
  });
  return [{ functionDeclarations: declarations }];
}

export function translateToolChoice(choice: unknown, parallel: unknown): Json | undefined {
  if (parallel === false) {
    refuse('parallel_tool_calls', 'Gemini cannot be limited to one tool call per turn.');
  }
  if (choice === undefined || choice === null) return undefined;
  const mode = (m: string, names?: string[]) => ({
    functionCallingConfig: names ? { mode: m, allowedFunctionNames: names } : { mode: m },
  });
  if (choice === 'auto') return mode('AUTO');
  if (choice === 'none') return mode('NONE');
  if (choice === 'required') return mode('ANY');
  const c = asObject(choice);
  const name = asObject(c?.['function'])?.['name'];
  if (c?.['type'] === 'function' && typeof name === 'string') return mode('ANY', [name]);
  if (c?.['type'] === 'allowed_tools') {
    const allowed = asObject(c['allowed_tools']);
    const names = asArray(allowed?.['tools']).map((t, i) => {
      const n = asObject(asObject(t)?.['function'])?.['name'];
      if (typeof n !== 'string') {
        refuse(`tool_choice.allowed_tools.tools[${i}]`, 'Only function tools can be allowed.');
      }
      return n;
    });
    // Gemini restricts the callable functions only when a call is required (mode ANY).
    if (allowed?.['mode'] !== 'required') {
      refuse('tool_choice.allowed_tools.mode', "Gemini restricts functions only with mode 'required'.");
    }
    return mode('ANY', names);
  }
  return refuse('tool_choice', "'tool_choice' must be auto, none, required or a function.");
}

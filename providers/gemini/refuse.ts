// What a request asks for that Gemini cannot do: the client gets a 400 in OpenAI's error shape with
// `param` naming the field (never a silent drop).

export class Untranslatable extends Error {
  readonly param: string;
  constructor(param: string, message: string) {
    super(message);
    this.name = 'Untranslatable';
    this.param = param;
  }
}

export function refuse(param: string, message: string): never {
  throw new Untranslatable(param, message);
}

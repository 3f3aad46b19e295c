/**
 * A request field the Messages API cannot express: the relay refuses it (400, `param` set to the
 * field) rather than dropping it silently. Stand-in until the adapter contract's own error lands.
 */
export class Untranslatable extends Error {
  readonly param: string;
  constructor(param: string, message: string) {
    super(message);
    this.name = 'Untranslatable';
    this.param = param;
  }
}

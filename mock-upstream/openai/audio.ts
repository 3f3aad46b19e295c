// POST /v1/audio/transcriptions and /translations (multipart: `file`, `model`, `response_format`
// json | text | srt | verbose_json | vtt) and /v1/audio/speech (JSON in, audio bytes out).
// Transcripts name the model and the file's size and SHA-256, so a test sees what arrived;
// `usage` as OpenAI documents it: tokens for gpt-4o-*-transcribe, duration for whisper-1.
// Speech bytes are a deterministic function of model, voice, input and format.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import { inputTokens } from '../content.ts';
import type { Json, MockHttp } from '../http.ts';
import type { MockForm } from '../multipart.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

/** Mock audio is "16 kB a second": the duration a whisper-1 answer reports. */
export const AUDIO_BYTES_PER_SECOND = 16_000;

const FORMATS = new Set(['json', 'text', 'srt', 'verbose_json', 'vtt']);

export function transcriptionText(task: string, model: string, file: Buffer): string {
  const sha = createHash('sha256').update(file).digest('hex');
  return `${task} by ${model}: ${file.length} bytes, sha256 ${sha}`;
}

function audio(task: 'transcribe' | 'translate') {
  return (m: MockHttp, res: ServerResponse, form: MockForm, deployment?: string) => {
    const file = form.files.find((f) => f.name === 'file');
    if (!file) return badRequest(m, res, "Missing required parameter: 'file'.");
    const model = deployment ?? form.fields.model!;
    const format = form.fields.response_format ?? 'json';
    if (!FORMATS.has(format)) return badRequest(m, res, `Invalid value for 'response_format': '${format}'.`);
    const text = transcriptionText(task === 'transcribe' ? 'transcribed' : 'translated', model, file.data);
    const seconds = Math.max(1, Math.ceil(file.data.length / AUDIO_BYTES_PER_SECOND));
    const usage = model.startsWith('whisper')
      ? { type: 'duration', seconds }
      : (() => {
          const input = 50 + Math.ceil(file.data.length / 1000);
          const output = inputTokens(text);
          return {
            type: 'tokens',
            input_tokens: input,
            input_token_details: { text_tokens: 0, audio_tokens: input },
            output_tokens: output,
            total_tokens: input + output,
          };
        })();
    if (format === 'text' || format === 'srt' || format === 'vtt') {
      const body =
        format === 'text'
          ? `${text}\n`
          : format === 'srt'
            ? `1\n00:00:00,000 --> 00:00:0${Math.min(seconds, 9)},000\n${text}\n\n`
            : `WEBVTT\n\n00:00:00.000 --> 00:00:0${Math.min(seconds, 9)}.000\n${text}\n\n`;
      res.writeHead(200, {
        'content-type': 'text/plain; charset=utf-8',
        'x-mock-name': m.name,
        ...ACCOUNT_HEADERS,
      });
      res.end(body);
      return;
    }
    const out: Json =
      format === 'verbose_json'
        ? {
            task,
            language: 'english',
            duration: seconds,
            text,
            segments: [{ id: 0, seek: 0, start: 0, end: seconds, text, tokens: [1, 2, 3], temperature: 0 }],
            usage: { type: 'duration', seconds },
          }
        : { text, usage };
    m.sendJson(res, 200, JSON.stringify(out), ACCOUNT_HEADERS);
  };
}

export const transcriptions = audio('transcribe');
export const translations = audio('translate');

const SPEECH_TYPES: Record<string, string> = {
  mp3: 'audio/mpeg',
  opus: 'audio/opus',
  aac: 'audio/aac',
  flac: 'audio/flac',
  wav: 'audio/wav',
  pcm: 'audio/pcm',
};

/** The speech "audio": 200 bytes per input character, SHA-256 blocks chained from the request. */
export function speechBytes(model: string, voice: string, input: string, format: string): Buffer {
  const size = 200 * [...input].length;
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`${model}\0${voice}\0${format}\0${input}`).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function speech(m: MockHttp, res: ServerResponse, r: MockRequest, deployment?: string) {
  const b = r.body as Json;
  const input = b['input'];
  const voice = b['voice'];
  if (typeof input !== 'string' || input === '')
    return badRequest(m, res, "Missing required parameter: 'input'.");
  if (typeof voice !== 'string') return badRequest(m, res, "Missing required parameter: 'voice'.");
  const format = typeof b['response_format'] === 'string' ? b['response_format'] : 'mp3';
  const type = SPEECH_TYPES[format];
  if (!type) return badRequest(m, res, `Invalid value for 'response_format': '${format}'.`);
  const model = deployment ?? String(b['model']);
  const bytes = speechBytes(model, voice, input, format);
  // Chunked, in 16 KiB writes: the relay must pass it on as it comes.
  res.writeHead(200, { 'content-type': type, 'x-mock-name': m.name, ...ACCOUNT_HEADERS });
  for (let at = 0; at < bytes.length; at += 16 * 1024) res.write(bytes.subarray(at, at + 16 * 1024));
  res.end();
}

// POST /v1/rerank (and /rerank): the Cohere/Jina shape vLLM serves. `{model, query, documents,
// top_n?, return_documents?}` -> `{id, model, usage: {total_tokens}, results: [{index,
// relevance_score, document: {text}}]}`, best first; the score is the share of query words the
// document contains (deterministic).
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import { inputTokens } from '../content.ts';
import type { Json, MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

const words = (s: string) => s.toLowerCase().match(/[a-z0-9]+/g) ?? [];

export function rerankScore(query: string, doc: string): number {
  const q = new Set(words(query));
  if (q.size === 0) return 0;
  const d = new Set(words(doc));
  let hits = 0;
  for (const w of q) if (d.has(w)) hits++;
  return hits / q.size;
}

export function rerank(m: MockHttp, res: ServerResponse, r: MockRequest) {
  const b = r.body as Json;
  const query = b['query'];
  const docs = b['documents'];
  if (typeof query !== 'string') return badRequest(m, res, "Missing required parameter: 'query'.");
  if (!Array.isArray(docs) || docs.length === 0)
    return badRequest(m, res, "Missing required parameter: 'documents'.");
  const text = docs.map((d) =>
    typeof d === 'string' ? d : typeof (d as Json)?.text === 'string' ? String((d as Json).text) : '',
  );
  const topN = typeof b['top_n'] === 'number' ? Math.max(0, Math.floor(b['top_n'])) : text.length;
  const withDocs = b['return_documents'] !== false;
  const results = text
    .map((t, index) => ({
      index,
      relevance_score: rerankScore(query, t),
      ...(withDocs && { document: { text: t } }),
    }))
    .sort((a, z) => z.relevance_score - a.relevance_score || a.index - z.index)
    .slice(0, topN);
  const total = inputTokens(query) * text.length + text.reduce((n, t) => n + inputTokens(t), 0);
  const out = { id: `rerank-mock-${m.nextId()}`, model: b['model'], usage: { total_tokens: total }, results };
  m.sendJson(res, 200, JSON.stringify(out), ACCOUNT_HEADERS);
}

// rerank.test.mjs — POST /v1/rerank with plain fetch (the OpenAI SDK has no rerank call), in the
// Jina/Cohere shape llama-server answers (SWITCHYARD_RERANK_MODEL: a random-weight BERT reranker).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

const URL = process.env.SWITCHYARD_URL;
const MODEL = process.env.SWITCHYARD_RERANK_MODEL;
const skip = URL && MODEL ? false : 'SWITCHYARD_URL / SWITCHYARD_RERANK_MODEL not set';

async function rerank(body) {
  const r = await fetch(`${URL}/rerank`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-no-key-needed' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

describe('rerank via fetch', { skip }, () => {
  test('results sorted by relevance_score, indexes a permutation, top_n and documents', async () => {
    const documents = ['the cat sat', 'stock prices fell', 'a kitten napped', 'rain tomorrow'];
    const { status, json } = await rerank({ model: MODEL, query: 'cats', documents, top_n: 3, return_documents: true });
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal(json.results.length, 3);
    const idx = new Set(json.results.map((r) => r.index));
    assert.equal(idx.size, 3);
    for (let i = 1; i < json.results.length; i++)
      assert.ok(json.results[i - 1].relevance_score >= json.results[i].relevance_score);
    for (const r of json.results) {
      assert.ok(Number.isFinite(r.relevance_score));
      assert.equal(r.document.text, documents[r.index]);
    }
    assert.ok(json.usage.prompt_tokens > 0);
  });

  test('a missing query is a 400 in OpenAI error shape', async () => {
    const { status, json } = await rerank({ model: MODEL, documents: ['x'] });
    assert.equal(status, 400);
    assert.equal(typeof json.error.message, 'string');
  });
});

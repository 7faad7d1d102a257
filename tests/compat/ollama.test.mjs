// ollama.test.mjs — Switchyard's Ollama API (/api/...) through the real `ollama` npm client
// (ollama-js, pinned in package.json), run with `node --test` from tests/run.sh (or by hand, below).
//
// Covers, through the client's own request building and NDJSON parsing:
//  - version(), list() (Ollama's entry shape: name, model, size, 64-hex digest, details,
//    modified_at), show() (details, capabilities, model_info), ps() (Ollama's fields beside ours);
//  - chat() and generate(), plain and streamed: every line before the last has done false, the
//    last done true with the timing fields as integers (nanoseconds); streamed text equals the
//    whole answer's at temperature 0 with a seed; a "name:latest" tag maps onto the matrix name;
//    raw generate; options (num_predict, stop, seed, temperature);
//  - tools: a forced call (tool_choice, our extension; Ollama has no way to force one) comes back
//    as message.tool_calls with arguments as an object, streamed too; a call and its result sent
//    back in the history; format with a JSON schema comes back as JSON that satisfies it;
//  - embed() with a string, an array and dimensions (unit vectors), the older embeddings();
//  - keep_alive: an empty generate loads (done_reason "load"), keep_alive 0 unloads ("unload"),
//    a keep_alive duration shows in ps()'s expires_at;
//  - errors as the client's ResponseError with Ollama's status and a string message (an
//    OpenAI-shaped body reaches ollama-js as "[object Object]"): unknown model 404, a bad option
//    400, a streamed request refused before its first line, copy 501, delete of a configured model
//    400;
//  - images (when SWITCHYARD_VLM_MODEL names a vision model): a PNG as bytes and as base64.
// The models have random weights: assert structure, never meaning.
//
// Environment: SWITCHYARD_OLLAMA_HOST (e.g. http://127.0.0.1:8080), SWITCHYARD_OLLAMA_MODEL (a
// chat model with request_keep_alive: true that no other suite unloads), SWITCHYARD_EMBED_MODEL,
// SWITCHYARD_TOOLS_MODEL (Qwen3's template), optionally SWITCHYARD_VLM_MODEL. Without the host
// every test is skipped. By hand:
//   cd tests/compat && npm ci && SWITCHYARD_OLLAMA_HOST=http://127.0.0.1:8080 \
//     SWITCHYARD_OLLAMA_MODEL=ollama SWITCHYARD_EMBED_MODEL=embed SWITCHYARD_TOOLS_MODEL=tools \
//     node --test ollama.test.mjs
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Ollama } from 'ollama';

const HOST = process.env.SWITCHYARD_OLLAMA_HOST;
const MODEL = process.env.SWITCHYARD_OLLAMA_MODEL;
const EMBED = process.env.SWITCHYARD_EMBED_MODEL;
const TOOLS = process.env.SWITCHYARD_TOOLS_MODEL;
const VLM = process.env.SWITCHYARD_VLM_MODEL;
const skip = HOST && MODEL && EMBED && TOOLS ? false : 'SWITCHYARD_OLLAMA_HOST (and the models) not set';
const ollama = HOST ? new Ollama({ host: HOST }) : null;

// a 5x4 RGB PNG
const PNG_5X4 =
  'iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwevSuXNnABojSPEzoaAiYB6OQAigk3IXICDBUB8Q' +
  'oSs1rFla/4dHetm7fEMTPbO3+6l+D1cfDu22FFMAAAAAAElFTkSuQmCC';

const isNonNegInt = (v) => Number.isInteger(v) && v >= 0;
const greedy = { num_predict: 8, temperature: 0, seed: 7 };

// the fields of a final line (or a whole answer)
function checkDone(r, reason) {
  assert.equal(r.done, true);
  if (reason) assert.equal(r.done_reason, reason);
  else assert.ok(['stop', 'length'].includes(r.done_reason), r.done_reason);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration',
    'eval_count', 'eval_duration'])
    assert.ok(isNonNegInt(r[k]), `${k}: ${r[k]}`);
  assert.ok(r.prompt_eval_count > 0);
  assert.ok(r.total_duration >= r.eval_duration, 'total covers the generation');
  assert.ok(!Number.isNaN(Date.parse(r.created_at)), r.created_at);
}

async function collect(stream) {
  const parts = [];
  for await (const p of stream) parts.push(p);
  assert.ok(parts.length >= 2, 'several lines');
  parts.slice(0, -1).forEach((p) => assert.equal(p.done, false));
  return parts;
}

async function rejects(promise, status, re) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, 'ResponseError', String(e));
    assert.equal(e.status_code, status, e.message);
    assert.equal(typeof e.error, 'string');
    assert.doesNotMatch(e.error, /\[object Object\]/);
    if (re) assert.match(e.error, re);
    return true;
  });
}

async function psEntry(name) {
  const ps = await ollama.ps();
  return ps.models.find((m) => m.name === name);
}

describe('the Ollama API via ollama-js', { skip }, () => {
  test('version and list', async () => {
    const v = await ollama.version();
    assert.match(v.version, /^\d+\.\d+\.\d+$/);
    const { models } = await ollama.list();
    for (const name of [MODEL, EMBED, TOOLS]) {
      const m = models.find((x) => x.name === name);
      assert.ok(m, `${name} listed`);
      assert.equal(m.model, name);
      assert.ok(m.size > 0);
      assert.match(m.digest, /^[0-9a-f]{64}$/);
      assert.equal(m.details.format, 'gguf');
      assert.ok(m.details.family.length > 0);
      assert.ok(!Number.isNaN(Date.parse(m.modified_at)));
    }
  });

  test('show: details, capabilities, model_info; an unknown model is a 404', async () => {
    const s = await ollama.show({ model: `${MODEL}:latest` });
    assert.ok(s.capabilities.includes('completion'));
    assert.equal(s.details.format, 'gguf');
    assert.equal(typeof s.model_info['general.architecture'], 'string');
    const e = await ollama.show({ model: EMBED });
    assert.ok(e.capabilities.includes('embedding'));
    await rejects(ollama.show({ model: 'no-such-model' }), 404, /not found/);
  });

  test('chat, whole and streamed: the same text, Ollama timings in nanoseconds', async () => {
    const req = { model: `${MODEL}:latest`, messages: [{ role: 'user', content: 'Say hi' }], options: greedy };
    const r = await ollama.chat(req);
    assert.equal(r.model, `${MODEL}:latest`);
    assert.equal(r.message.role, 'assistant');
    assert.equal(typeof r.message.content, 'string');
    checkDone(r, 'length');
    assert.equal(r.eval_count, 8);
    const parts = await collect(await ollama.chat({ ...req, stream: true }));
    const last = parts.at(-1);
    checkDone(last, 'length');
    assert.equal(last.eval_count, 8);
    assert.equal(parts.map((p) => p.message.content).join(''), r.message.content);
  });

  test('generate, whole and streamed; system, stop, raw', async () => {
    const req = { model: MODEL, prompt: 'Once upon a time', system: 'Be brief.', options: greedy };
    const r = await ollama.generate(req);
    assert.equal(typeof r.response, 'string');
    checkDone(r, 'length');
    const parts = await collect(await ollama.generate({ ...req, stream: true }));
    checkDone(parts.at(-1), 'length');
    assert.equal(parts.map((p) => p.response).join(''), r.response);
    const raw = await ollama.generate({ model: MODEL, prompt: 'abc', raw: true, options: { num_predict: 3 } });
    checkDone(raw, 'length');
    assert.equal(raw.eval_count, 3);
    const stopped = await ollama.generate({ ...req, options: { ...greedy, num_predict: 2, stop: ['\n\n'] } });
    assert.ok(stopped.eval_count <= 2);
  });

  const weather = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Weather in a city',
        parameters: {
          type: 'object',
          properties: { unit: { type: 'string', enum: ['c', 'f'] } },
          required: ['unit'],
        },
      },
    },
  ];
  const ask = {
    model: TOOLS,
    messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
    tools: weather,
    tool_choice: { type: 'function', function: { name: 'get_weather' } }, // ours: force the call
    parallel_tool_calls: false,
    options: { num_predict: 80, temperature: 0, seed: 5 },
  };
  const checkCall = (c) => {
    assert.equal(c.function.name, 'get_weather');
    assert.equal(typeof c.function.arguments, 'object', 'arguments are an object, as Ollama sends them');
    assert.ok(['c', 'f'].includes(c.function.arguments.unit), JSON.stringify(c));
  };

  test('tools: a forced call comes back as message.tool_calls, whole and streamed', async () => {
    const r = await ollama.chat(ask);
    assert.equal(r.message.tool_calls.length, 1, JSON.stringify(r.message));
    checkCall(r.message.tool_calls[0]);
    checkDone(r);
    const parts = await collect(await ollama.chat({ ...ask, stream: true }));
    const calls = parts.flatMap((p) => p.message.tool_calls ?? []);
    assert.equal(calls.length, 1);
    checkCall(calls[0]);
  });

  test('tools: the call and its result go back in the history', async () => {
    const r = await ollama.chat(ask);
    const r2 = await ollama.chat({
      model: TOOLS,
      messages: [...ask.messages, r.message, { role: 'tool', tool_name: 'get_weather', content: '-3 C and snowing' }],
      tools: weather,
      options: { num_predict: 4 },
    });
    checkDone(r2);
    assert.ok(r2.prompt_eval_count > r.prompt_eval_count, 'the history is in the prompt');
  });

  test('format: a JSON schema constrains the answer', async () => {
    const schema = {
      type: 'object',
      properties: { cold: { type: 'boolean' }, level: { type: 'string', enum: ['low', 'high'] } },
      required: ['cold', 'level'],
      additionalProperties: false,
    };
    const r = await ollama.chat({
      model: TOOLS,
      messages: [{ role: 'user', content: 'Is it cold?' }],
      format: schema,
      options: { num_predict: 60, temperature: 0, seed: 5 },
    });
    const v = JSON.parse(r.message.content);
    assert.equal(typeof v.cold, 'boolean');
    assert.ok(['low', 'high'].includes(v.level));
    const j = await ollama.generate({ model: TOOLS, prompt: 'JSON please', format: 'json', options: { num_predict: 60, temperature: 0, seed: 5 } });
    assert.equal(j.response.trimStart()[0], '{');
  });

  test('embed and embeddings: unit vectors, one per input, dimensions', async () => {
    const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const one = await ollama.embed({ model: EMBED, input: 'hello world' });
    assert.equal(one.embeddings.length, 1);
    const dim = one.embeddings[0].length;
    assert.ok(dim >= 8);
    const two = await ollama.embed({ model: EMBED, input: ['first', 'hello world'] });
    assert.equal(two.embeddings.length, 2);
    for (const v of two.embeddings) assert.ok(Math.abs(norm(v) - 1) < 1e-3);
    assert.ok(isNonNegInt(two.prompt_eval_count) && two.prompt_eval_count > 0);
    assert.ok(isNonNegInt(two.total_duration));
    const cut = await ollama.embed({ model: EMBED, input: 'hello world', dimensions: 8 });
    assert.equal(cut.embeddings[0].length, 8);
    assert.ok(Math.abs(norm(cut.embeddings[0]) - 1) < 1e-3);
    const old = await ollama.embeddings({ model: EMBED, prompt: 'hello world' });
    assert.equal(old.embedding.length, dim);
    old.embedding.forEach((x, i) => assert.ok(Math.abs(x - one.embeddings[0][i]) < 1e-4));
    await rejects(ollama.embed({ model: MODEL, input: 'x' }), 400, /embed/);
  });

  test('ps: Ollama fields beside ours', async () => {
    await ollama.generate({ model: MODEL, prompt: 'hi', options: { num_predict: 1 } });
    const m = await psEntry(MODEL);
    assert.ok(m, 'listed after a request');
    assert.equal(m.model, MODEL);
    assert.ok(m.size > 0);
    assert.ok(isNonNegInt(m.size_vram));
    assert.match(m.digest, /^[0-9a-f]{64}$/);
    assert.equal(m.details.format, 'gguf');
    assert.equal(m.context_length, 512);
    assert.ok(Date.parse(m.expires_at) > Date.now() - 5000);
    assert.equal(m.state, 'loaded'); // ours
  });

  test('keep_alive: an empty request loads, keep_alive 0 unloads, a duration shows', async () => {
    const u = await ollama.generate({ model: MODEL, prompt: '', keep_alive: 0 });
    assert.equal(u.done_reason, 'unload');
    assert.equal(await psEntry(MODEL), undefined);
    const l = await ollama.generate({ model: MODEL, prompt: '' });
    assert.equal(l.done, true);
    assert.equal(l.done_reason, 'load');
    assert.ok(await psEntry(MODEL));
    const c = await ollama.chat({ model: MODEL, messages: [], keep_alive: '10m' });
    assert.equal(c.done_reason, 'load');
    const left = Date.parse((await psEntry(MODEL)).expires_at) - Date.now();
    assert.ok(left > 8 * 60e3 && left <= 10 * 60e3 + 5e3, `expires in ${left} ms`);
    const cu = await ollama.chat({ model: MODEL, messages: [], keep_alive: '0s' });
    assert.equal(cu.done_reason, 'unload');
    assert.equal(await psEntry(MODEL), undefined);
  });

  test('errors: Ollama status codes and string messages', async () => {
    const msgs = [{ role: 'user', content: 'x' }];
    await rejects(ollama.chat({ model: 'no-such-model', messages: msgs }), 404, /not found/);
    await rejects(ollama.chat({ model: MODEL, messages: msgs, options: { temperature: 9 } }), 400, /options\.temperature/);
    await rejects(ollama.generate({ model: MODEL, prompt: 'x', stream: true, options: { top_k: -1 } }), 400, /top_k/);
    await rejects(ollama.chat({ model: MODEL, messages: msgs, format: 'xml' }), 400, /format/);
    await rejects(ollama.copy({ source: MODEL, destination: 'copy-of-it' }), 501, /not built yet/);
    await rejects(ollama.delete({ model: MODEL }), 400, /named in the config/);
  });

  test('images: a PNG as bytes and as base64 (vision models)', { skip: VLM ? false : 'SWITCHYARD_VLM_MODEL not set' }, async () => {
    const text = await ollama.chat({ model: VLM, messages: [{ role: 'user', content: 'What is this?' }], options: { num_predict: 2 } });
    const bytes = await ollama.chat({
      model: VLM,
      messages: [{ role: 'user', content: 'What is this?', images: [Buffer.from(PNG_5X4, 'base64')] }],
      options: { num_predict: 2 },
    });
    checkDone(bytes);
    assert.ok(bytes.prompt_eval_count > text.prompt_eval_count, 'the image adds prompt tokens');
    const b64 = await ollama.generate({ model: VLM, prompt: 'What is this?', images: [PNG_5X4], options: { num_predict: 2 } });
    assert.equal(b64.prompt_eval_count, bytes.prompt_eval_count);
    await rejects(ollama.chat({ model: MODEL, messages: [{ role: 'user', content: 'x', images: [PNG_5X4] }] }), 400, /images/);
  });
});

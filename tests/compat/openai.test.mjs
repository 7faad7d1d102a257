// openai.test.mjs — Switchyard against the official OpenAI Node SDK (openai@6), run with
// `node --test` from tests/run.sh (or by hand, see below).
//
// Covers, through the SDK's own request building and response parsing:
//  - models.list() (auto-paginated) holds both models; models.retrieve() by name;
//  - chat.completions.create, not streamed: the response shape (id, object, created, model,
//    choices[0].index / message.role / message.content / finish_reason, usage numbers that add up,
//    max_tokens honoured);
//  - the same request streamed with stream_options.include_usage: one id for every chunk, the
//    role first, content deltas, exactly one finish_reason, usage null on every chunk but the last,
//    a last chunk with no choices carrying the usage; the streamed text and usage equal the
//    non-streamed call's at temperature 0 with the same seed;
//  - completions.create, streamed and not (the same text), the default of 16 tokens;
//  - embeddings.create with a string and with an array, through the SDK's default (it asks for
//    base64 and decodes it), with encoding_format "float", and with "base64" decoded here: one
//    vector per input in order, equal dims, L2 norm 1 within 1e-3, the three encodings agree;
//    dimensions (a cut, renormalised vector; more than the model has -> BadRequestError);
//  - errors as the SDK's typed exceptions: unknown model -> NotFoundError (404) naming the model;
//    temperature out of range -> BadRequestError (400, param temperature), for a streamed request
//    too; a chat model asked for embeddings -> BadRequestError (wrong_capability);
//  - image input (when SWITCHYARD_VLM_MODEL names a vision model): a user message with a text
//    part and an image_url part (a data: URL PNG), plain and streamed; the image adds the same
//    number of prompt tokens both ways; the text-only chat model refuses it (unsupported_content).
//  - audio input (when SWITCHYARD_ALM_MODEL names an audio model): an input_audio part (a 1 s WAV
//    made here), plain and streamed, the same prompt tokens both ways; audio.transcriptions.create
//    with the same model gives text; the text-only chat model refuses audio (unsupported_content).
// The models have random weights: assert structure, never meaning.
//
// Environment: SWITCHYARD_URL (e.g. http://127.0.0.1:8080/v1), SWITCHYARD_CHAT_MODEL,
// SWITCHYARD_EMBED_MODEL, optionally SWITCHYARD_API_KEY. Without SWITCHYARD_URL every test is
// skipped. By hand:
//   cd tests/compat && npm ci && SWITCHYARD_URL=http://127.0.0.1:8080/v1 \
//     SWITCHYARD_CHAT_MODEL=chat SWITCHYARD_EMBED_MODEL=embed node --test
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI, { toFile } from 'openai';

const URL = process.env.SWITCHYARD_URL;
const CHAT = process.env.SWITCHYARD_CHAT_MODEL;
const EMBED = process.env.SWITCHYARD_EMBED_MODEL;
const VLM = process.env.SWITCHYARD_VLM_MODEL;
const ALM = process.env.SWITCHYARD_ALM_MODEL;

// 1 s of a 440 Hz tone: a 16 kHz mono 16-bit WAV
function sineWav() {
  const n = 16000;
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + 2 * n, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(16000, 24);
  b.writeUInt32LE(32000, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / 16000)), 44 + 2 * i);
  return b;
}
// a 5x4 RGB PNG
const PNG_5X4 =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAIAAADJUWIXAAAAQklEQVR42hXIMRHAMAwEwevSuXNnABojSPEzoaAiYB6OQAigk3IXICDBUB8Q' +
  'oSs1rFla/4dHetm7fEMTPbO3+6l+D1cfDu22FFMAAAAAAElFTkSuQmCC';
const skip = URL ? false : 'SWITCHYARD_URL is not set (no daemon to test against)';

const client = URL
  ? new OpenAI({
      baseURL: URL,
      apiKey: process.env.SWITCHYARD_API_KEY || 'sk-no-key-needed',
      maxRetries: 0, // a retry would hide a failure
      timeout: 120_000,
    })
  : null;

const isInt = (v) => Number.isInteger(v);
const isNonNegInt = (v) => Number.isInteger(v) && v >= 0;

function checkUsage(u, maxCompletion) {
  assert.ok(u, 'usage present');
  assert.ok(isInt(u.prompt_tokens) && u.prompt_tokens > 0, `prompt_tokens ${u.prompt_tokens}`);
  assert.ok(isNonNegInt(u.completion_tokens), `completion_tokens ${u.completion_tokens}`);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  if (maxCompletion !== undefined) assert.ok(u.completion_tokens <= maxCompletion);
}

function checkFinish(reason, usage, maxTokens) {
  assert.ok(['stop', 'length'].includes(reason), `finish_reason ${reason}`);
  if (reason === 'length' && maxTokens !== undefined) assert.equal(usage.completion_tokens, maxTokens);
}

function norm(v) {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

// A base64 embedding as OpenAI sends it: little-endian float32.
function decodeBase64(s) {
  const b = Buffer.from(s, 'base64');
  assert.equal(b.length % 4, 0, 'base64 embedding is a whole number of float32');
  const out = [];
  for (let i = 0; i < b.length; i += 4) out.push(b.readFloatLE(i));
  return out;
}

function assertClose(a, b, tol, what) {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++)
    if (!(Math.abs(a[i] - b[i]) <= tol)) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
}

const chatReq = {
  messages: [
    { role: 'system', content: 'You are a test.' },
    { role: 'user', content: 'Count to five.' },
  ],
  max_tokens: 12,
  temperature: 0,
  seed: 1234,
};

describe('switchyard via the OpenAI Node SDK', { skip }, () => {
  test('models.list holds the chat and the embedding model', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.id, 'string');
      ids.push(m.id);
    }
    assert.ok(ids.includes(CHAT), `${CHAT} in ${ids}`);
    assert.ok(ids.includes(EMBED), `${EMBED} in ${ids}`);
    const one = await client.models.retrieve(CHAT);
    assert.equal(one.id, CHAT);
    assert.equal(one.object, 'model');
  });

  test('chat.completions.create (not streamed): response shape', async () => {
    const r = await client.chat.completions.create({ model: CHAT, ...chatReq });
    assert.equal(typeof r.id, 'string');
    assert.ok(r.id.length > 0);
    assert.equal(r.object, 'chat.completion');
    assert.ok(isInt(r.created) && r.created > 1_600_000_000, `created ${r.created}`);
    assert.equal(typeof r.model, 'string');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    checkUsage(r.usage, chatReq.max_tokens);
    checkFinish(c.finish_reason, r.usage, chatReq.max_tokens);
  });

  test('chat.completions.create streamed with include_usage equals the non-streamed call', async () => {
    const whole = await client.chat.completions.create({ model: CHAT, ...chatReq });
    const stream = await client.chat.completions.create({
      model: CHAT,
      ...chatReq,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`); // role, finish, usage at least

    const id = chunks[0].id;
    assert.equal(typeof id, 'string');
    for (const ch of chunks) {
      assert.equal(ch.object, 'chat.completion.chunk');
      assert.equal(ch.id, id, 'one id for the whole stream');
      assert.ok(isInt(ch.created));
    }
    // the role comes first
    assert.equal(chunks[0].choices.length, 1);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    // the last chunk carries the usage and no choices; every other chunk has usage null
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    checkUsage(last.usage, chatReq.max_tokens);
    for (const ch of chunks.slice(0, -1)) {
      assert.equal(ch.usage, null, 'usage is null before the last chunk');
      assert.equal(ch.choices.length, 1);
      assert.equal(ch.choices[0].index, 0);
    }
    // exactly one finish_reason, on the chunk before the usage chunk, after all content
    const finishers = chunks.filter((ch) => ch.choices.length && ch.choices[0].finish_reason);
    assert.equal(finishers.length, 1, 'one finish_reason');
    assert.equal(finishers[0], chunks[chunks.length - 2]);
    checkFinish(finishers[0].choices[0].finish_reason, last.usage, chatReq.max_tokens);

    let text = '';
    let deltas = 0;
    for (const ch of chunks.slice(0, -1)) {
      const content = ch.choices[0].delta.content;
      if (content !== undefined && content !== null) {
        assert.equal(typeof content, 'string');
        text += content;
        if (content.length) deltas++;
      }
    }
    if (text.length) assert.ok(deltas >= 1);
    // greedy with the same seed: the same text, the same counts
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finishers[0].choices[0].finish_reason, whole.choices[0].finish_reason);
    assert.deepEqual(last.usage, whole.usage);
  });

  test('chat stream without include_usage has no usage chunk', async () => {
    const stream = await client.chat.completions.create({
      model: CHAT,
      ...chatReq,
      max_tokens: 3,
      stream: true,
    });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    for (const ch of chunks) {
      assert.equal(ch.choices.length, 1);
      assert.ok(ch.usage === undefined || ch.usage === null);
    }
    assert.ok(chunks[chunks.length - 1].choices[0].finish_reason);
  });

  test('completions.create: shape, default max_tokens, streamed text equals the non-streamed', async () => {
    const req = { model: CHAT, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, seed: 9 };
    const r = await client.completions.create(req);
    assert.equal(typeof r.id, 'string');
    assert.equal(r.object, 'text_completion');
    assert.ok(isInt(r.created));
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].index, 0);
    assert.equal(typeof r.choices[0].text, 'string');
    checkUsage(r.usage, 6);
    checkFinish(r.choices[0].finish_reason, r.usage, 6);

    const stream = await client.completions.create({ ...req, stream: true });
    let text = '';
    let finish = null;
    for await (const ch of stream) {
      assert.equal(ch.object, 'text_completion');
      if (!ch.choices.length) continue;
      if (typeof ch.choices[0].text === 'string') text += ch.choices[0].text;
      if (ch.choices[0].finish_reason) {
        assert.equal(finish, null, 'one finish_reason');
        finish = ch.choices[0].finish_reason;
      }
    }
    assert.equal(text, r.choices[0].text);
    assert.equal(finish, r.choices[0].finish_reason);

    // without max_tokens: OpenAI's default of 16
    const d = await client.completions.create({ model: CHAT, prompt: 'The', temperature: 0 });
    checkUsage(d.usage, 16);
    checkFinish(d.choices[0].finish_reason, d.usage, 16);
  });

  test('embeddings.create: string and array, default (base64), float and base64 agree', async () => {
    // the SDK's default asks for base64 and decodes it into numbers
    const one = await client.embeddings.create({ model: EMBED, input: 'hello world' });
    assert.equal(one.object, 'list');
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0].object, 'embedding');
    assert.equal(one.data[0].index, 0);
    const v = Array.from(one.data[0].embedding);
    const dim = v.length;
    assert.ok(dim > 0);
    for (const x of v) assert.ok(Number.isFinite(x));
    assert.ok(Math.abs(norm(v) - 1) < 1e-3, `norm ${norm(v)}`);
    assert.ok(isInt(one.usage.prompt_tokens) && one.usage.prompt_tokens > 0);
    assert.equal(one.usage.total_tokens, one.usage.prompt_tokens);

    const inputs = ['first input', 'a second, longer input with more words', 'x'];
    const many = await client.embeddings.create({ model: EMBED, input: inputs });
    assert.equal(many.data.length, inputs.length);
    many.data.forEach((d, i) => {
      assert.equal(d.index, i);
      assert.equal(d.embedding.length, dim, 'every vector has the same dims');
      assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-3, `norm of ${i}: ${norm(d.embedding)}`);
    });

    // explicit float: plain JSON numbers, the same vector as the decoded base64
    const f = await client.embeddings.create({ model: EMBED, input: 'hello world', encoding_format: 'float' });
    assert.ok(Array.isArray(f.data[0].embedding));
    assert.equal(typeof f.data[0].embedding[0], 'number');
    assertClose(f.data[0].embedding, v, 1e-6, 'float vs default base64');

    // explicit base64: the SDK hands the string through; decode it as OpenAI defines it
    const b = await client.embeddings.create({ model: EMBED, input: inputs, encoding_format: 'base64' });
    assert.equal(b.data.length, inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      assert.equal(typeof b.data[i].embedding, 'string');
      const dec = decodeBase64(b.data[i].embedding);
      assert.equal(dec.length, dim);
      assertClose(dec, Array.from(many.data[i].embedding), 1e-6, `base64 vs default, input ${i}`);
    }

    // dimensions: the first n values, renormalised (through the SDK's default base64 too)
    const cut = await client.embeddings.create({ model: EMBED, input: 'hello world', dimensions: 8 });
    const c = Array.from(cut.data[0].embedding);
    assert.equal(c.length, 8);
    assert.ok(Math.abs(norm(c) - 1) < 1e-3, `norm of the cut vector: ${norm(c)}`);
    const n8 = norm(v.slice(0, 8));
    assertClose(c, v.slice(0, 8).map((x) => x / n8), 1e-5, 'dimensions 8 vs the full vector');
    await assert.rejects(
      client.embeddings.create({ model: EMBED, input: 'x', dimensions: dim + 1 }),
      (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}`);
        assert.equal(err.param, 'dimensions');
        return true;
      });
  });

  test('errors: unknown model is a NotFoundError naming it', async () => {
    const name = 'no-such-model-' + process.pid;
    await assert.rejects(
      client.chat.completions.create({ model: name, messages: [{ role: 'user', content: 'hi' }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 404);
        assert.ok(err.message.includes(name), err.message);
        assert.equal(err.code, 'model_not_found');
        assert.equal(err.param, 'model');
        assert.equal(err.type, 'invalid_request_error');
        return true;
      },
    );
    await assert.rejects(client.embeddings.create({ model: name, input: 'x' }), OpenAI.NotFoundError);
  });

  test('errors: bad temperature is a BadRequestError, streamed or not', async () => {
    const check = (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 400);
      assert.equal(err.param, 'temperature');
      assert.ok(err.message.includes('temperature'), err.message);
      return true;
    };
    const bad = { model: CHAT, messages: [{ role: 'user', content: 'hi' }], temperature: 5 };
    await assert.rejects(client.chat.completions.create(bad), check);
    await assert.rejects(client.chat.completions.create({ ...bad, stream: true }), check);
  });

  test('image input: image_url parts, plain and streamed', { skip: VLM ? false : 'SWITCHYARD_VLM_MODEL is not set' }, async () => {
    const ask = (content, extra = {}) =>
      client.chat.completions.create({ model: VLM, messages: [{ role: 'user', content }], max_tokens: 4, temperature: 0, seed: 3, ...extra });
    const text = { type: 'text', text: 'What is in this picture?' };
    const image = { type: 'image_url', image_url: { url: PNG_5X4, detail: 'low' } };
    const plain = await ask([text]);
    const withImage = await ask([text, image]);
    checkUsage(withImage.usage, 4);
    assert.ok(withImage.usage.completion_tokens > 0);
    const imageTokens = withImage.usage.prompt_tokens - plain.usage.prompt_tokens;
    assert.ok(imageTokens > 0, `the image adds prompt tokens (${imageTokens})`);
    assert.equal(typeof withImage.choices[0].message.content, 'string');
    let usage = null;
    let chunks = 0;
    for await (const c of await ask([text, image], { stream: true, stream_options: { include_usage: true } })) {
      chunks++;
      if (c.usage) usage = c.usage;
    }
    assert.ok(chunks > 1 && usage, 'streamed with usage');
    assert.equal(usage.prompt_tokens, withImage.usage.prompt_tokens);
    await assert.rejects(
      client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: [text, image] }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}`);
        assert.equal(err.code, 'unsupported_content');
        return true;
      },
    );
  });

  test('audio input: input_audio parts, plain and streamed; transcriptions', { skip: ALM ? false : 'SWITCHYARD_ALM_MODEL is not set' }, async () => {
    const ask = (content, extra = {}) =>
      client.chat.completions.create({ model: ALM, messages: [{ role: 'user', content }], max_tokens: 4, temperature: 0, seed: 3, ...extra });
    const wav = sineWav();
    const text = { type: 'text', text: 'What is said?' };
    const audio = { type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } };
    const plain = await ask([text]);
    const withAudio = await ask([text, audio]);
    checkUsage(withAudio.usage, 4);
    const audioTokens = withAudio.usage.prompt_tokens - plain.usage.prompt_tokens;
    assert.ok(audioTokens > 0, `the audio adds prompt tokens (${audioTokens})`);
    assert.equal(typeof withAudio.choices[0].message.content, 'string');
    let usage = null;
    for await (const c of await ask([text, audio], { stream: true, stream_options: { include_usage: true } })) {
      if (c.usage) usage = c.usage;
    }
    assert.ok(usage, 'streamed with usage');
    assert.equal(usage.prompt_tokens, withAudio.usage.prompt_tokens);
    const tr = await client.audio.transcriptions.create({ model: ALM, file: await toFile(wav, 'tone.wav') });
    assert.equal(typeof tr.text, 'string');
    await assert.rejects(
      client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: [text, audio] }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}`);
        assert.equal(err.code, 'unsupported_content');
        return true;
      },
    );
  });

  test('errors: an embedding request to the chat model is a BadRequestError', async () => {
    await assert.rejects(client.embeddings.create({ model: CHAT, input: 'x' }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}`);
      assert.equal(err.code, 'wrong_capability');
      return true;
    });
  });
});

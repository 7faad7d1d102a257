// anthropic.test.mjs — Switchyard's Messages API (/v1/messages, /v1/messages/count_tokens) through
// the official Anthropic Node SDK (@anthropic-ai/sdk, pinned in package.json). The SDK's baseURL is
// the server root (SWITCHYARD_ANTHROPIC_URL: it adds /v1 itself). Models: SWITCHYARD_CHAT_MODEL (a
// random-weight Qwen2), SWITCHYARD_TOOLS_MODEL (Qwen3 with its real tool template) and
// SWITCHYARD_THINK_MODEL (QwQ: its template opens <think>, so the answer starts as reasoning).
// Random weights: shapes, ids, stop reasons, token counts and the SDK's own accumulation are
// checked, never the text's meaning.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import Anthropic, { BadRequestError, NotFoundError } from '@anthropic-ai/sdk';

const URL = process.env.SWITCHYARD_ANTHROPIC_URL;
const CHAT = process.env.SWITCHYARD_CHAT_MODEL;
const TOOLS = process.env.SWITCHYARD_TOOLS_MODEL;
const THINK = process.env.SWITCHYARD_THINK_MODEL;
const skip = URL && CHAT && TOOLS && THINK ? false : 'SWITCHYARD_ANTHROPIC_URL / *_MODEL not set';
const client = URL
  ? new Anthropic({ baseURL: URL, apiKey: process.env.SWITCHYARD_API_KEY || 'sk-no-key-needed', maxRetries: 0 })
  : null;

const weatherTool = {
  name: 'get_weather',
  description: 'Weather in a city',
  input_schema: {
    type: 'object',
    properties: { unit: { type: 'string', enum: ['c', 'f'] } },
    required: ['unit'],
    additionalProperties: false,
  },
};
const askWeather = {
  model: TOOLS,
  max_tokens: 80,
  temperature: 0, // the SDK's types no longer list sampling fields; the API still takes them
  tools: [weatherTool],
  tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
  messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
};

function checkUsage(u) {
  for (const k of ['input_tokens', 'output_tokens', 'cache_read_input_tokens', 'cache_creation_input_tokens'])
    assert.equal(typeof u[k], 'number', `usage.${k}: ${JSON.stringify(u)}`);
  assert.ok(u.input_tokens + u.cache_read_input_tokens > 0);
}

function checkToolUse(block) {
  assert.equal(block.type, 'tool_use');
  assert.match(block.id, /^toolu_[A-Za-z0-9]{24}$/);
  assert.equal(block.name, 'get_weather');
  assert.deepEqual(Object.keys(block.input), ['unit']);
  assert.ok(['c', 'f'].includes(block.input.unit), JSON.stringify(block.input));
}

describe('Messages API via the Anthropic Node SDK', { skip }, () => {
  test('messages.create: a message with a text block and usage', async () => {
    const m = await client.messages.create({
      model: CHAT,
      max_tokens: 8,
      system: 'You are terse.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello' }] }],
      metadata: { user_id: 'compat' },
    });
    assert.match(m.id, /^msg_/);
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, CHAT);
    assert.ok(['max_tokens', 'end_turn'].includes(m.stop_reason), m.stop_reason);
    assert.equal(m.stop_sequence, null);
    for (const b of m.content) assert.equal(b.type, 'text');
    checkUsage(m.usage);
    assert.ok(m.usage.output_tokens >= 1 && m.usage.output_tokens <= 8);
  });

  test('messages.stream: text events, finalMessage and finalText agree', async () => {
    const stream = client.messages.stream({
      model: CHAT,
      max_tokens: 10,
      temperature: 0,
      messages: [{ role: 'user', content: 'Tell me a story' }],
    });
    let text = '';
    const kinds = [];
    stream.on('text', (delta) => {
      text += delta;
    });
    stream.on('streamEvent', (ev) => kinds.push(ev.type));
    const final = await stream.finalMessage();
    assert.equal(kinds[0], 'message_start');
    assert.equal(kinds.at(-1), 'message_stop');
    assert.equal(kinds.at(-2), 'message_delta');
    assert.equal(final.role, 'assistant');
    assert.match(final.id, /^msg_/);
    const texts = final.content.filter((b) => b.type === 'text').map((b) => b.text);
    assert.ok(texts.length > 0, 'greedy on this prompt writes text');
    assert.equal(texts.join(''), text);
    assert.equal(await stream.finalText(), texts.join(' '));
    checkUsage(final.usage); // input_tokens come with message_delta
    assert.ok(final.usage.output_tokens >= 1);
  });

  test('create({stream: true}): the raw events in Anthropic order', async () => {
    const s = await client.messages.create({
      model: CHAT,
      max_tokens: 4,
      stream: true,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    const types = [];
    for await (const ev of s) types.push(ev.type);
    assert.equal(types[0], 'message_start');
    assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
    const starts = types.filter((t) => t === 'content_block_start').length;
    assert.equal(types.filter((t) => t === 'content_block_stop').length, starts);
  });

  test('stop_sequences: stop_reason stop_sequence names the string', async () => {
    const first = await client.messages.create({
      model: CHAT,
      max_tokens: 12,
      temperature: 0,
      messages: [{ role: 'user', content: 'Count with me' }],
    });
    const text = first.content.map((b) => b.text).join('');
    const words = text.split(' ').filter((w) => w.length > 0);
    assert.ok(words.length >= 2, text);
    const stop = ' ' + words[1];
    const cut = await client.messages.create({
      model: CHAT,
      max_tokens: 12,
      temperature: 0,
      stop_sequences: [stop],
      messages: [{ role: 'user', content: 'Count with me' }],
    });
    assert.equal(cut.stop_reason, 'stop_sequence');
    assert.equal(cut.stop_sequence, stop);
    assert.ok(!cut.content.map((b) => b.text).join('').includes(stop));
  });

  test('tools: a forced call comes back as a tool_use block', async () => {
    const m = await client.messages.create(askWeather);
    assert.equal(m.stop_reason, 'tool_use');
    const calls = m.content.filter((b) => b.type === 'tool_use');
    assert.equal(calls.length, 1);
    checkToolUse(calls[0]);
  });

  test('tools streamed: the SDK accumulates input_json_delta into the parsed input', async () => {
    const stream = client.messages.stream(askWeather);
    let json = '';
    stream.on('inputJson', (partial) => {
      json += partial;
    });
    const final = await stream.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    const call = final.content.find((b) => b.type === 'tool_use');
    checkToolUse(call);
    assert.deepEqual(JSON.parse(json), call.input);
  });

  test('tool round trip: the tool_use and its tool_result go back in the history', async () => {
    const m = await client.messages.create(askWeather);
    const call = m.content.find((b) => b.type === 'tool_use');
    const history = [
      ...askWeather.messages,
      { role: 'assistant', content: m.content },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: call.id, content: [{ type: 'text', text: '-3 C and snowing' }] },
          { type: 'text', text: 'Should I wear a coat?' },
        ],
      },
    ];
    const m2 = await client.messages.create({ model: TOOLS, max_tokens: 4, tools: [weatherTool], messages: history });
    assert.equal(m2.type, 'message');
    const seen = m2.usage.input_tokens + m2.usage.cache_read_input_tokens;
    assert.ok(seen > m.usage.input_tokens + m.usage.cache_read_input_tokens, 'the history is in the prompt');
    const counted = await client.messages.countTokens({ model: TOOLS, tools: [weatherTool], messages: history });
    assert.equal(counted.input_tokens, seen, 'countTokens counts the prompt the answer was made from');
  });

  test('thinking on: a thinking block with its signature, streamed with signature_delta', async () => {
    const ask = {
      model: THINK,
      max_tokens: 16,
      temperature: 0,
      thinking: { type: 'adaptive' },
      messages: [{ role: 'user', content: 'why?' }],
    };
    const m = await client.messages.create(ask);
    assert.equal(m.content[0].type, 'thinking');
    assert.ok(m.content[0].thinking.length > 0);
    assert.equal(typeof m.content[0].signature, 'string');
    const stream = client.messages.stream(ask);
    let thinking = '';
    stream.on('thinking', (delta) => {
      thinking += delta;
    });
    const deltas = [];
    stream.on('streamEvent', (ev) => {
      if (ev.type === 'content_block_delta') deltas.push(ev.delta.type);
    });
    const final = await stream.finalMessage();
    assert.equal(final.content[0].type, 'thinking');
    assert.equal(final.content[0].thinking, thinking);
    assert.ok(deltas.includes('signature_delta'));
    // budget_tokens as Anthropic checks it
    await assert.rejects(
      client.messages.create({ ...ask, thinking: { type: 'enabled', budget_tokens: 1024 } }),
      (e) => e instanceof BadRequestError && /budget_tokens/.test(e.message),
    );
  });

  test('countTokens: the prompt as the model sees it', async () => {
    const r = await client.messages.countTokens({
      model: TOOLS,
      system: 'You are terse.',
      tools: [weatherTool],
      thinking: { type: 'enabled', budget_tokens: 2048 },
      messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(typeof r.input_tokens, 'number');
    const plain = await client.messages.countTokens({ model: TOOLS, messages: [{ role: 'user', content: 'Hello' }] });
    assert.ok(r.input_tokens > plain.input_tokens, 'system and tools count');
  });

  test('errors are the SDK typed exceptions', async () => {
    await assert.rejects(
      client.messages.create({ model: 'no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof NotFoundError && e.status === 404 && e.type === 'not_found_error',
    );
    await assert.rejects(
      client.messages.create({ model: CHAT, max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'video' }] }] }),
      (e) =>
        e instanceof BadRequestError && e.type === 'invalid_request_error' && /messages\.0\.content\.0\.type/.test(e.message),
    );
    await assert.rejects(
      client.messages.create({ model: CHAT, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof BadRequestError && /max_tokens/.test(e.message),
    );
    await assert.rejects(
      client.messages.countTokens({ model: CHAT, messages: [] }),
      (e) => e instanceof BadRequestError && e.status === 400,
    );
    await assert.rejects(
      client.messages.create({ model: CHAT, max_tokens: 4, temperature: 3, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof BadRequestError && /temperature/.test(e.message),
    );
    // the same in a stream's start (the status is decided before the first event)
    await assert.rejects(
      (async () => {
        const s = client.messages.stream({ model: 'no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] });
        await s.finalMessage();
      })(),
      (e) => e instanceof NotFoundError,
    );
    // (a wrong key as AuthenticationError needs a daemon with api_keys: itest messages_keys_and_router)
  });
});

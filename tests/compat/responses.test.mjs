// responses.test.mjs — the OpenAI Responses API (POST /v1/responses and friends) through the
// official OpenAI Node SDK (the `openai` package pinned in package.json), run with `node --test`
// from tests/run.sh's compat suite (or by hand, see openai.test.mjs).
//
// Covers, through the SDK's own request building, event parsing and accumulation:
//  - responses.create, not streamed: the response object (id resp_…, object, status, model, a
//    message item with output_text, the SDK's output_text, usage that adds up, cached_tokens);
//  - the same request streamed: typed events with sequence numbers from 0, response.created
//    first, output_text deltas that add up to the final text, response.completed / .incomplete
//    last; the same text as not streamed (temperature 0); responses.stream()'s finalResponse();
//  - a function-call round trip on a Qwen3-shaped model with Qwen3's tool template: a forced
//    tool_choice gives a function_call item (call_id, name, JSON arguments); its output goes back
//    once with previous_response_id and once with the whole input (the items as the SDK got
//    them): both are the same conversation, so the same prompt size; streamed, the call comes as
//    function_call_arguments events and the SDK accumulates it;
//  - json_schema output (text.format through zodTextFormat and responses.parse): output_parsed
//    satisfies the schema;
//  - retrieve and delete of a stored response; store: false is not kept;
//    responses.inputTokens.count equals the prompt size create reports;
//  - errors as the SDK's typed exceptions: an unknown previous_response_id and an unknown model
//    (NotFoundError), a built-in tool, background: true, a temperature out of range
//    (BadRequestError naming the field), streamed too.
// The models have random weights: assert structure, never meaning.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const URL = process.env.SWITCHYARD_URL;
const CHAT = process.env.SWITCHYARD_CHAT_MODEL;
const TOOLS = process.env.SWITCHYARD_TOOLS_MODEL;
const skip = URL && CHAT ? false : 'SWITCHYARD_URL / SWITCHYARD_CHAT_MODEL not set';
const skipTools = URL && TOOLS ? false : 'SWITCHYARD_URL / SWITCHYARD_TOOLS_MODEL not set';
const client = URL
  ? new OpenAI({
      baseURL: URL,
      apiKey: process.env.SWITCHYARD_API_KEY || 'sk-no-key-needed',
      maxRetries: 0,
      timeout: 120_000,
    })
  : null;

const isNonNegInt = (v) => Number.isInteger(v) && v >= 0;

function checkUsage(u) {
  assert.ok(isNonNegInt(u.input_tokens) && u.input_tokens > 0, JSON.stringify(u));
  assert.ok(isNonNegInt(u.output_tokens), JSON.stringify(u));
  assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
  assert.ok(isNonNegInt(u.input_tokens_details.cached_tokens));
  assert.ok(u.input_tokens_details.cached_tokens <= u.input_tokens);
}

const plain = {
  model: CHAT,
  instructions: 'You are terse.',
  input: 'Say something about trains.',
  max_output_tokens: 12,
  temperature: 0,
};

describe('the Responses API via the OpenAI Node SDK', { skip }, () => {
  test('responses.create: the response object', async () => {
    const r = await client.responses.create(plain);
    assert.match(r.id, /^resp_[A-Za-z0-9]{24}$/);
    assert.equal(r.object, 'response');
    assert.ok(['completed', 'incomplete'].includes(r.status), r.status);
    if (r.status === 'incomplete') assert.equal(r.incomplete_details.reason, 'max_output_tokens');
    assert.equal(r.model, CHAT);
    assert.equal(r.instructions, plain.instructions);
    assert.equal(r.max_output_tokens, 12);
    assert.ok(Number.isInteger(r.created_at));
    assert.equal(r.error, null);
    const msg = r.output.find((o) => o.type === 'message');
    assert.ok(msg, JSON.stringify(r.output));
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.content[0].type, 'output_text');
    assert.equal(r.output_text, msg.content[0].text);
    checkUsage(r.usage);
    assert.ok(r.usage.output_tokens >= 1 && r.usage.output_tokens <= 12);
  });

  test('streamed: typed events in order that add up to the same text', async () => {
    const whole = await client.responses.create(plain);
    const stream = await client.responses.create({ ...plain, stream: true });
    const events = [];
    for await (const e of stream) events.push(e);
    assert.equal(events[0].type, 'response.created');
    assert.equal(events[1].type, 'response.in_progress');
    events.forEach((e, i) => assert.equal(e.sequence_number, i, e.type));
    const last = events[events.length - 1];
    assert.ok(['response.completed', 'response.incomplete'].includes(last.type), last.type);
    const text = events
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join('');
    const done = events.find((e) => e.type === 'response.output_text.done');
    assert.equal(done.text, text);
    assert.equal(text, whole.output_text);
    assert.equal(last.response.usage.output_tokens, whole.usage.output_tokens);
    assert.ok(events.some((e) => e.type === 'response.output_item.added'));
    assert.ok(events.some((e) => e.type === 'response.content_part.done'));

    // the SDK's stream helper accumulates the events into the final response
    const s = client.responses.stream(plain);
    const final = await s.finalResponse();
    assert.equal(final.output_text, whole.output_text);
  });

  test('retrieve, delete; store: false is not kept; input_tokens', async () => {
    const r = await client.responses.create({ ...plain, metadata: { run: 'compat' } });
    const got = await client.responses.retrieve(r.id);
    assert.equal(got.id, r.id);
    assert.equal(got.output_text, r.output_text);
    assert.deepEqual(got.metadata, { run: 'compat' });
    await client.responses.delete(r.id);
    await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
    const nostore = await client.responses.create({ ...plain, store: false });
    assert.equal(nostore.store, false);
    await assert.rejects(client.responses.retrieve(nostore.id), OpenAI.NotFoundError);
    const count = await client.responses.inputTokens.count({
      model: CHAT,
      instructions: plain.instructions,
      input: plain.input,
    });
    assert.equal(count.object, 'response.input_tokens');
    assert.equal(count.input_tokens, r.usage.input_tokens);
  });

  test('errors are the SDK typed exceptions', async () => {
    await assert.rejects(
      client.responses.create({ ...plain, previous_response_id: 'resp_doesnotexist' }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.param === 'previous_response_id',
    );
    await assert.rejects(
      client.responses.create({ ...plain, model: 'no-such-model' }),
      (e) => e instanceof OpenAI.NotFoundError && /no-such-model/.test(e.message),
    );
    await assert.rejects(
      client.responses.create({ ...plain, tools: [{ type: 'web_search' }] }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools' && e.code === 'unsupported_parameter',
    );
    await assert.rejects(
      client.responses.create({ ...plain, background: true }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'background',
    );
    for (const stream of [false, true]) {
      await assert.rejects(
        client.responses.create({ ...plain, temperature: 5, stream }),
        (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature',
      );
    }
    await assert.rejects(
      client.responses.create({ ...plain, input: [{ type: 'item_reference', id: 'msg_1' }] }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'input',
    );
  });
});

const tools = [
  {
    type: 'function',
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: {
      type: 'object',
      properties: { unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['unit'],
      additionalProperties: false,
    },
    strict: true,
  },
];
const ask = {
  model: TOOLS,
  input: [{ role: 'user', content: 'What is the weather in Oslo?' }],
  tools,
  tool_choice: { type: 'function', name: 'get_weather' },
  parallel_tool_calls: false,
  max_output_tokens: 80,
  temperature: 0,
};

function checkCall(call) {
  assert.equal(call.type, 'function_call');
  assert.match(call.call_id, /^call_[A-Za-z0-9]{24}$/);
  assert.match(call.id, /^fc_/);
  assert.equal(call.name, 'get_weather');
  const args = JSON.parse(call.arguments);
  assert.deepEqual(Object.keys(args), ['unit']);
  assert.ok(['c', 'f'].includes(args.unit), call.arguments);
}

describe('function calls and structured output via the Responses API', { skip: skipTools }, () => {
  test('a function-call round trip: previous_response_id and the whole input agree', async () => {
    const r = await client.responses.create(ask);
    assert.equal(r.status, 'completed');
    const call = r.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(r.output));
    checkCall(call);
    const result = { type: 'function_call_output', call_id: call.call_id, output: '-3 C and snowing' };
    const next = { model: TOOLS, tools, max_output_tokens: 4, temperature: 0 };
    const byId = await client.responses.create({ ...next, previous_response_id: r.id, input: [result] });
    assert.equal(byId.previous_response_id, r.id);
    assert.ok(byId.usage.input_tokens > r.usage.input_tokens, 'the history is in the prompt');
    const full = await client.responses.create({ ...next, input: [...ask.input, ...r.output, result] });
    assert.equal(full.usage.input_tokens, byId.usage.input_tokens, 'the same conversation');
  });

  test('streamed: the call arrives as function_call_arguments events', async () => {
    const s = client.responses.stream(ask);
    const kinds = new Set();
    s.on('event', (e) => kinds.add(e.type));
    const final = await s.finalResponse();
    assert.ok(kinds.has('response.function_call_arguments.delta'), [...kinds].join(' '));
    assert.ok(kinds.has('response.function_call_arguments.done'));
    checkCall(final.output.find((o) => o.type === 'function_call'));
  });

  test('json_schema output: text.format through zodTextFormat and responses.parse', async () => {
    const Answer = z.object({ cold: z.boolean(), level: z.enum(['low', 'high']) });
    const r = await client.responses.parse({
      model: TOOLS,
      input: 'Is it cold?',
      text: { format: zodTextFormat(Answer, 'answer') },
      max_output_tokens: 60,
      temperature: 0,
    });
    assert.equal(r.text.format.type, 'json_schema');
    const parsed = r.output_parsed;
    assert.ok(parsed, JSON.stringify(r.output));
    assert.equal(typeof parsed.cold, 'boolean');
    assert.ok(['low', 'high'].includes(parsed.level));
  });
});

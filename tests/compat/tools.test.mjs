// tools.test.mjs — tool calling and structured output through the official OpenAI Node SDK, on a
// random-weight Qwen3-shaped model with Qwen3's real chat template (SWITCHYARD_TOOLS_MODEL). A
// forced tool_choice makes the grammar write a valid call whatever the weights; the SDK must see
// it as tool_calls, streamed (its ChatCompletionStream accumulates the deltas) and not. A zod
// schema through the SDK's own zodResponseFormat / parse helper must come back parsed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const URL = process.env.SWITCHYARD_URL;
const MODEL = process.env.SWITCHYARD_TOOLS_MODEL;
const skip = URL && MODEL ? false : 'SWITCHYARD_URL / SWITCHYARD_TOOLS_MODEL not set';
const client = URL
  ? new OpenAI({ baseURL: URL, apiKey: process.env.SWITCHYARD_API_KEY || 'sk-no-key-needed', maxRetries: 0 })
  : null;

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: {
        type: 'object',
        properties: { unit: { type: 'string', enum: ['c', 'f'] } },
        required: ['unit'],
        additionalProperties: false,
      },
    },
  },
];
const ask = {
  model: MODEL,
  messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
  tools,
  tool_choice: { type: 'function', function: { name: 'get_weather' } },
  parallel_tool_calls: false,
  max_tokens: 80,
  // greedy and seeded: the grammar forces the call's shape; what fills it (and how much optional
  // whitespace) is the random weights', the same on every run of this machine
  temperature: 0,
  seed: 5,
};

function checkCall(call) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.deepEqual(Object.keys(args), ['unit']);
  assert.ok(['c', 'f'].includes(args.unit), call.function.arguments);
}

describe('tools and structured output via the OpenAI Node SDK', { skip }, () => {
  test('a forced tool call comes back as message.tool_calls', async () => {
    const r = await client.chat.completions.create(ask);
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.content, null);
    assert.equal(m.tool_calls.length, 1);
    checkCall(m.tool_calls[0]);
  });

  test('streamed: the SDK accumulates the tool_calls deltas into the same call', async () => {
    const stream = client.chat.completions.stream({ ...ask, stream: true });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(final.choices[0].message.tool_calls.length, 1);
    checkCall(final.choices[0].message.tool_calls[0]);
  });

  test('round trip: the call and its result go back in the history', async () => {
    const r = await client.chat.completions.create(ask);
    const call = r.choices[0].message.tool_calls[0];
    const r2 = await client.chat.completions.create({
      model: MODEL,
      messages: [
        ...ask.messages,
        r.choices[0].message,
        { role: 'tool', tool_call_id: call.id, content: '-3 C and snowing' },
      ],
      tools,
      max_tokens: 4,
    });
    assert.equal(r2.object, 'chat.completion');
    assert.ok(r2.usage.prompt_tokens > r.usage.prompt_tokens, 'the history is in the prompt');
  });

  test('zod structured output: parse() returns an object that satisfies the schema', async () => {
    const Answer = z.object({ cold: z.boolean(), level: z.enum(['low', 'high']) });
    const r = await client.chat.completions.parse({
      model: MODEL,
      messages: [{ role: 'user', content: 'Is it cold?' }],
      response_format: zodResponseFormat(Answer, 'answer'),
      max_tokens: 60,
      temperature: 0,
      seed: 5,
    });
    const parsed = r.choices[0].message.parsed;
    assert.ok(parsed, JSON.stringify(r.choices[0].message));
    assert.equal(typeof parsed.cold, 'boolean');
    assert.ok(['low', 'high'].includes(parsed.level));
  });
});

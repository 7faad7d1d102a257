// speech.test.mjs — /v1/audio/speech through the official OpenAI Node SDK (openai@6), against the
// built-in `speak` model (espeak-ng; present in every daemon unless builtin_voice: false).
//
// Covers: audio.speech.create returns audio bytes — mp3 by default (an MPEG frame or an ID3 tag),
// wav (RIFF/WAVE, 24 kHz mono), pcm (s16le, even length), with an OpenAI voice name and a speed;
// the same request twice gives the same bytes; stream_format "sse" yields speech.audio.delta events
// whose base64 audio adds up to the pcm body, then speech.audio.done; errors as the SDK's typed
// exceptions (empty input, unknown voice -> BadRequestError; unknown model -> NotFoundError).
//
// Environment: SWITCHYARD_URL (e.g. http://127.0.0.1:8080/v1); SWITCHYARD_SPEECH_MODEL (default
// speak). Without SWITCHYARD_URL every test is skipped.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import OpenAI from 'openai';

const URL = process.env.SWITCHYARD_URL;
const MODEL = process.env.SWITCHYARD_SPEECH_MODEL || 'speak';
const skip = URL ? false : 'SWITCHYARD_URL is not set (no daemon to test against)';
const client = URL
  ? new OpenAI({
      baseURL: URL,
      apiKey: process.env.SWITCHYARD_API_KEY || 'sk-no-key-needed',
      maxRetries: 0,
      timeout: 120_000,
    })
  : null;

const TEXT = 'Hello from Switchyard. This is the built-in voice, speaking through the OpenAI SDK.';

async function bytes(params) {
  const res = await client.audio.speech.create({ model: MODEL, voice: 'alloy', input: TEXT, ...params });
  return Buffer.from(await res.arrayBuffer());
}

describe('audio.speech', { skip }, () => {
  test('mp3 by default', async () => {
    const b = await bytes({});
    assert.ok(b.length > 1000, `${b.length} bytes`);
    const id3 = b.subarray(0, 3).toString('latin1') === 'ID3';
    const sync = b[0] === 0xff && (b[1] & 0xe0) === 0xe0;
    assert.ok(id3 || sync, `mp3 magic: ${b.subarray(0, 4).toString('hex')}`);
  });

  test('wav: RIFF, 24 kHz, mono, 16 bit; deterministic', async () => {
    const a = await bytes({ response_format: 'wav', voice: 'nova', speed: 1.25 });
    assert.equal(a.subarray(0, 4).toString('latin1'), 'RIFF');
    assert.equal(a.subarray(8, 12).toString('latin1'), 'WAVE');
    assert.equal(a.subarray(12, 16).toString('latin1'), 'fmt ');
    assert.equal(a.readUInt16LE(20), 1, 'PCM');
    assert.equal(a.readUInt16LE(22), 1, 'mono');
    assert.equal(a.readUInt32LE(24), 24000, 'rate');
    assert.equal(a.readUInt16LE(34), 16, 'bits');
    assert.ok(a.length > 44 + 24000, `${a.length} bytes`);
    const b = await bytes({ response_format: 'wav', voice: 'nova', speed: 1.25 });
    assert.ok(a.equals(b), 'the same request gives the same bytes');
  });

  test('pcm, and the same audio as SSE deltas', async () => {
    const pcm = await bytes({ response_format: 'pcm' });
    assert.equal(pcm.length % 2, 0);
    assert.ok(pcm.length > 24000);
    // stream_format sse: the SDK returns the raw response; parse the events here
    const res = await client.audio.speech.create({
      model: MODEL, voice: 'alloy', input: TEXT, response_format: 'pcm', stream_format: 'sse',
    });
    const text = await res.text();
    const events = text.split('\n\n').filter((s) => s.startsWith('data: ')).map((s) => JSON.parse(s.slice(6)));
    const deltas = events.filter((e) => e.type === 'speech.audio.delta');
    assert.ok(deltas.length >= 1);
    const last = events.at(-1);
    assert.equal(last.type, 'speech.audio.done');
    assert.ok(Number.isInteger(last.usage.input_tokens) && last.usage.input_tokens > 0);
    const audio = Buffer.concat(deltas.map((e) => Buffer.from(e.audio, 'base64')));
    assert.ok(audio.equals(pcm), `SSE audio ${audio.length} bytes = pcm ${pcm.length} bytes`);
  });

  test('errors', async () => {
    await assert.rejects(bytes({ input: '' }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
    await assert.rejects(bytes({ voice: 'no-such-voice' }), (e) => e instanceof OpenAI.BadRequestError);
    await assert.rejects(bytes({ model: 'no-such-model' }), (e) => e instanceof OpenAI.NotFoundError);
  });
});

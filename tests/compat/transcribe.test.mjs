// transcribe.test.mjs — speech to text through the official OpenAI Node SDK (openai@6):
// client.audio.transcriptions.create and client.audio.translations.create against a whisper
// model (SWITCHYARD_WHISPER_MODEL: tests/run.sh makes a random-weight one with build/bin/mkwhisper,
// so the text is gibberish or empty: assert structure, never meaning).
//
// Covers, through the SDK's own multipart building and response parsing: the file as an
// fs.ReadStream and as toFile(Buffer); response_format json (an object with text and a duration
// usage), text and srt (strings: the SDK returns the body as is), verbose_json (task, language,
// duration, segments in order inside the audio, words with timestamp_granularities), a streamed
// transcription (transcript.text.delta events whose joined deltas equal the done event's text);
// translations (json and verbose_json: task "translate"); errors as typed exceptions (unknown
// model -> NotFoundError, a cut WAV -> BadRequestError invalid_audio, bytes of no known format -> 415).
//
// The audio is made here: 1 s of a 440 Hz sine, 16 kHz mono s16 WAV (no ../shared needed).
// By hand:
//   cd tests/compat && npm ci && SWITCHYARD_URL=http://127.0.0.1:8080/v1 \
//     SWITCHYARD_WHISPER_MODEL=whisper node --test transcribe.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import OpenAI, { toFile } from 'openai';

const URL = process.env.SWITCHYARD_URL;
const MODEL = process.env.SWITCHYARD_WHISPER_MODEL;
const skip = URL && MODEL ? false : 'SWITCHYARD_URL / SWITCHYARD_WHISPER_MODEL not set';
const SECONDS = 1;

function sineWav(seconds, hz = 440, rate = 16000) {
  const n = Math.round(seconds * rate);
  const b = Buffer.alloc(44 + n * 2);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + n * 2, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16); // fmt chunk size
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(1, 22); // mono
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28); // bytes per second
  b.writeUInt16LE(2, 32); // block align
  b.writeUInt16LE(16, 34); // bits per sample
  b.write('data', 36);
  b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(0.3 * 32767 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + i * 2);
  return b;
}

function checkSegments(v, task) {
  assert.equal(v.task, task);
  assert.equal(typeof v.language, 'string');
  assert.equal(typeof v.text, 'string');
  assert.ok(Math.abs(v.duration - SECONDS) < 0.01, `duration ${v.duration}`);
  assert.ok(Array.isArray(v.segments));
  let prev = 0;
  v.segments.forEach((s, i) => {
    assert.equal(s.id, i);
    assert.equal(typeof s.text, 'string');
    assert.ok(s.start >= prev && s.end >= s.start && s.end <= SECONDS + 1e-6, JSON.stringify(s));
    prev = s.start;
  });
}

describe('audio via the OpenAI SDK', { skip }, () => {
  const client = new OpenAI({ baseURL: URL, apiKey: process.env.SWITCHYARD_API_KEY || 'sk-no-key-needed', maxRetries: 0 });
  const wav = sineWav(SECONDS);
  let dir, wavPath;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-compat-audio-'));
    wavPath = path.join(dir, 'tone.wav');
    fs.writeFileSync(wavPath, wav);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('json from an fs.ReadStream: text and a duration usage', async () => {
    const r = await client.audio.transcriptions.create({ file: fs.createReadStream(wavPath), model: MODEL });
    assert.equal(typeof r.text, 'string');
    assert.equal(r.usage.type, 'duration');
    assert.equal(r.usage.seconds, SECONDS);
  });

  // Two requests give the same text only when nothing but the audio decides it: temperature 0
  // with the fallback ladder off (temperature_inc 0, whisper-server's field), i.e. plain greedy
  // decoding. With the ladder on, whether a window falls back depends on the processor's float
  // rounding (random weights), and the fallback samples from a generator seeded once per model.
  const GREEDY = { temperature: 0, temperature_inc: 0 };

  test('json from toFile(Buffer) gives the same text (greedy, no fallback)', async () => {
    const a = await client.audio.transcriptions.create({ file: fs.createReadStream(wavPath), model: MODEL, ...GREEDY });
    const b = await client.audio.transcriptions.create({ file: await toFile(wav, 'tone.wav'), model: MODEL, ...GREEDY });
    assert.equal(b.text, a.text);
  });

  test('text and srt come back as strings', async () => {
    const json = await client.audio.transcriptions.create({ file: await toFile(wav, 'tone.wav'), model: MODEL, ...GREEDY });
    const text = await client.audio.transcriptions.create({
      file: await toFile(wav, 'tone.wav'),
      model: MODEL,
      response_format: 'text',
      ...GREEDY,
    });
    assert.equal(typeof text, 'string');
    assert.equal(text.trim(), json.text.trim());
    const srt = await client.audio.transcriptions.create({
      file: await toFile(wav, 'tone.wav'),
      model: MODEL,
      response_format: 'srt',
    });
    assert.equal(typeof srt, 'string');
    const cues = srt.split('\n\n').filter((c) => c.trim());
    cues.forEach((c, i) => {
      const lines = c.split('\n');
      assert.equal(lines[0], String(i + 1), c);
      assert.match(lines[1], /^\d\d:\d\d:\d\d,\d\d\d --> \d\d:\d\d:\d\d,\d\d\d$/, c);
      assert.ok(lines.length >= 3, c);
    });
    if (json.text.trim()) assert.ok(cues.length > 0, 'a non-empty text has cues');
  });

  test('verbose_json with word and segment timestamps', async () => {
    const v = await client.audio.transcriptions.create({
      file: await toFile(wav, 'tone.wav'),
      model: MODEL,
      response_format: 'verbose_json',
      timestamp_granularities: ['word', 'segment'],
    });
    checkSegments(v, 'transcribe');
    assert.ok(Array.isArray(v.words));
    for (const w of v.words) {
      assert.equal(typeof w.word, 'string');
      assert.ok(w.end >= w.start && w.start >= 0 && w.end <= SECONDS + 1e-6, JSON.stringify(w));
    }
  });

  test('streamed: deltas then done, joined deltas equal the text', async () => {
    const stream = await client.audio.transcriptions.create({
      file: await toFile(wav, 'tone.wav'),
      model: MODEL,
      stream: true,
    });
    let joined = '';
    let done = null;
    for await (const ev of stream) {
      if (ev.type === 'transcript.text.delta') {
        assert.equal(done, null, 'no delta after done');
        joined += ev.delta;
      } else if (ev.type === 'transcript.text.done') {
        done = ev;
      }
    }
    assert.ok(done, 'a transcript.text.done event');
    assert.equal(done.text, joined);
  });

  test('translations: json and verbose_json (task translate)', async () => {
    const t = await client.audio.translations.create({ file: fs.createReadStream(wavPath), model: MODEL });
    assert.equal(typeof t.text, 'string');
    const v = await client.audio.translations.create({
      file: await toFile(wav, 'tone.wav'),
      model: MODEL,
      response_format: 'verbose_json',
    });
    checkSegments(v, 'translate');
  });

  test('errors are the SDK typed exceptions', async () => {
    await assert.rejects(
      client.audio.transcriptions.create({ file: await toFile(wav, 'tone.wav'), model: 'no-such-model' }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
    );
    await assert.rejects( // a WAV cut inside its header
      client.audio.transcriptions.create({ file: await toFile(wav.subarray(0, 30), 'cut.wav'), model: MODEL }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.code === 'invalid_audio',
    );
    await assert.rejects( // bytes no decoder recognises
      client.audio.transcriptions.create({ file: await toFile(Buffer.from('not audio at all'), 'x.bin'), model: MODEL }),
      (e) => e instanceof OpenAI.APIError && e.status === 415 && e.code === 'unsupported_audio_format',
    );
  });
});

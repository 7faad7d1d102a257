// playground.js — try any model: chat (streamed, with images as data: URLs), transcribe (an
// uploaded clip or one recorded here), speak (any voice, played from a blob: URL). Through the
// same API every client uses (/v1/chat/completions, /v1/audio/transcriptions, /v1/audio/speech,
// /v1/audio/voices), with the key from api.js. Model output is shown as text, never as HTML.
import { api, apiJson, el, readSse } from './api.js';

const $ = (id) => document.getElementById(id);
const history = []; // the chat so far: OpenAI messages
let chatAbort = null;
let images = []; // data: URLs of the images to send with the next message
let clip = null; // {blob, name}: the clip to transcribe

// ---- model pickers ----
const pickers = [
  ['chatmodel', (m) => m.capabilities.includes('chat')],
  ['asrmodel', (m) => m.capabilities.includes('transcribe')],
  ['ttsmodel', (m) => m.capabilities.includes('speech')],
];
let lastNames = '';
export function setModels(models) {
  const names = models.map((m) => m.id + ':' + (m.capabilities || []).join(',')).join(' ');
  if (names === lastNames) return;
  lastNames = names;
  for (const [id, want] of pickers) {
    const sel = $(id), keep = sel.value;
    const opts = models.filter((m) => want({ capabilities: m.capabilities || [] }))
      .map((m) => el('option', { value: m.id, text: m.id }));
    sel.replaceChildren(...(opts.length ? opts : [el('option', { value: '', text: '(no such model)' })]));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
}

// ---- chat ----
function bubble(role, text) {
  const b = el('div', { class: 'msg ' + role }, el('span', { class: 'who', text: role }), el('div', { class: 'text', text }));
  $('chatlog').append(b);
  $('chatlog').scrollTop = $('chatlog').scrollHeight;
  return b;
}

function readAsDataUrl(file) {
  return new Promise((ok, fail) => {
    const r = new FileReader();
    r.onload = () => ok(r.result);
    r.onerror = () => fail(r.error);
    r.readAsDataURL(file);
  });
}

async function sendChat(e) {
  e.preventDefault();
  const model = $('chatmodel').value, text = $('chatinput').value.trim();
  if (!model || (!text && !images.length)) return;
  const content = images.length
    ? [...(text ? [{ type: 'text', text }] : []), ...images.map((url) => ({ type: 'image_url', image_url: { url } }))]
    : text;
  const u = bubble('user', text + (images.length ? ` [${images.length} image(s)]` : ''));
  history.push({ role: 'user', content });
  $('chatinput').value = '';
  images = [];
  $('chatimage').value = '';
  $('chatthumbs').replaceChildren();
  const a = bubble('assistant', '');
  const out = a.querySelector('.text');
  a.dataset.chunks = '0';
  chatAbort = new AbortController();
  $('chatsend').disabled = true;
  $('chatstop').disabled = false;
  let answer = '', reasoning = '';
  try {
    const r = await api('/v1/chat/completions', {
      json: { model, messages: history, stream: true, max_tokens: Number($('chatmax').value) || 128, stream_options: { include_usage: true } },
      signal: chatAbort.signal,
    });
    await readSse(r, (data) => {
      if (data === '[DONE]') return false;
      const j = JSON.parse(data);
      if (j.error) throw new Error(j.error.message || 'error');
      const d = j.choices && j.choices[0] && j.choices[0].delta;
      if (d && d.reasoning_content) reasoning += d.reasoning_content;
      if (d && d.content) answer += d.content;
      if (d && (d.content || d.reasoning_content)) {
        a.dataset.chunks = String(Number(a.dataset.chunks) + 1);
        out.textContent = (reasoning ? '(thinking) ' + reasoning + '\n\n' : '') + answer;
      }
      if (j.usage) a.dataset.tokens = String(j.usage.completion_tokens);
    });
    history.push({ role: 'assistant', content: answer });
  } catch (err) {
    if (!chatAbort.signal.aborted) {
      a.classList.add('error');
      out.textContent = answer + (answer ? '\n' : '') + '⚠ ' + err.message;
    }
    history.pop(); // the question without an answer is not kept
    u.classList.add('unanswered');
  } finally {
    a.dataset.done = 'true';
    chatAbort = null;
    $('chatsend').disabled = false;
    $('chatstop').disabled = true;
  }
}

async function pickImages() {
  images = [];
  const thumbs = [];
  for (const f of $('chatimage').files) {
    images.push(await readAsDataUrl(f));
    const img = el('img', { alt: f.name, title: f.name });
    img.src = URL.createObjectURL(f);
    img.addEventListener('load', () => URL.revokeObjectURL(img.src));
    thumbs.push(img);
  }
  $('chatthumbs').replaceChildren(...thumbs);
}

// ---- transcribe ----
let recorder = null;
async function toggleRecord() {
  if (recorder) { recorder.stop(); return; }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    $('asrclip').textContent = 'no microphone: ' + err.message;
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (ev) => chunks.push(ev.data);
  recorder.onstop = () => {
    stream.getTracks().forEach((t) => t.stop());
    const type = recorder.mimeType || 'audio/webm';
    clip = { blob: new Blob(chunks, { type }), name: 'recording.' + (type.includes('ogg') ? 'ogg' : 'webm') };
    recorder = null;
    $('asrrec').textContent = 'Record';
    $('asrclip').textContent = `recorded ${(clip.blob.size / 1024).toFixed(0)} KiB (WebM/Ogg: the daemon needs ffmpeg for it)`;
  };
  recorder.start();
  $('asrrec').textContent = 'Stop recording';
  $('asrclip').textContent = 'recording…';
}

async function transcribe(e) {
  e.preventDefault();
  const f = $('asrfile').files[0];
  const c = f ? { blob: f, name: f.name } : clip;
  if (!c || !$('asrmodel').value) { $('asrout').textContent = 'pick a file or record a clip first'; return; }
  const form = new FormData();
  form.append('model', $('asrmodel').value);
  form.append('file', c.blob, c.name);
  form.append('response_format', 'json');
  $('asrout').textContent = 'transcribing…';
  $('asrout').dataset.done = 'false';
  try {
    const j = await apiJson('/v1/audio/transcriptions', { method: 'POST', body: form });
    $('asrout').textContent = j.text || '(no speech heard)';
  } catch (err) {
    $('asrout').textContent = '⚠ ' + err.message;
  } finally {
    $('asrout').dataset.done = 'true';
  }
}

// ---- speak ----
async function listVoices() {
  $('ttsmsg').textContent = 'asking for voices (this loads the speech models)…';
  try {
    const j = await apiJson('/v1/audio/voices');
    const mine = j.data.find((m) => m.model === $('ttsmodel').value);
    const voices = (mine && mine.voices) || [];
    $('ttsvoices').replaceChildren(...voices.map((v) => el('option', { value: v.id, text: v.name || v.id })));
    $('ttsmsg').textContent = mine && mine.error ? '⚠ ' + mine.error : `${voices.length} voices`;
  } catch (err) {
    $('ttsmsg').textContent = '⚠ ' + err.message;
  }
}

let audioUrl = null;
async function speak(e) {
  e.preventDefault();
  const input = $('ttsinput').value.trim();
  if (!input || !$('ttsmodel').value) return;
  const body = { model: $('ttsmodel').value, input, response_format: 'wav' };
  if ($('ttsvoice').value.trim()) body.voice = $('ttsvoice').value.trim();
  $('ttsmsg').textContent = 'speaking…';
  try {
    const blob = await (await api('/v1/audio/speech', { json: body })).blob();
    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = URL.createObjectURL(blob);
    $('ttsaudio').src = audioUrl;
    $('ttsmsg').textContent = `${(blob.size / 1024).toFixed(0)} KiB of audio`;
    $('ttsaudio').play().catch(() => { /* autoplay refused: the controls are there */ });
  } catch (err) {
    $('ttsmsg').textContent = '⚠ ' + err.message;
  }
}

export function initPlayground() {
  for (const b of document.querySelectorAll('#playground .tabs button')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('#playground .tabs button')) o.classList.toggle('on', o === b);
      for (const t of document.querySelectorAll('#playground .tab')) t.hidden = t.id !== 'tab-' + b.dataset.tab;
    });
  }
  $('chatform').addEventListener('submit', sendChat);
  $('chatinput').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('chatform').requestSubmit(); }
  });
  $('chatstop').addEventListener('click', () => chatAbort && chatAbort.abort());
  $('chatclear').addEventListener('click', () => { history.length = 0; $('chatlog').replaceChildren(); });
  $('chatimage').addEventListener('change', pickImages);
  $('asrrec').addEventListener('click', toggleRecord);
  $('asrfile').addEventListener('change', () => { clip = null; $('asrclip').textContent = ''; });
  $('asrform').addEventListener('submit', transcribe);
  $('ttslist').addEventListener('click', listVoices);
  $('ttsform').addEventListener('submit', speak);
}

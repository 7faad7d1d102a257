// metrics.js — reads the daemon's Prometheus text (GET /metrics) into the numbers the sparklines
// show: generated tokens per second, the mean time to first token of the requests that started
// since the last sample, and the requests queued. Counters are differenced between two samples;
// a counter that went down (a daemon restart) gives no value for that step.

// The sum of every sample named name (all label sets). Lines: `name{labels} value` or `name value`.
export function sumOf(text, name) {
  let s = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const v = parseFloat(line.slice(line.lastIndexOf(' ') + 1));
    if (isFinite(v)) s += v;
  }
  return s;
}

export function sample(text, t) {
  return {
    t,
    tokens: sumOf(text, 'switchyard_generated_tokens_total'),
    ttftSum: sumOf(text, 'switchyard_time_to_first_token_seconds_sum'),
    ttftCount: sumOf(text, 'switchyard_time_to_first_token_seconds_count'),
    queue: sumOf(text, 'switchyard_queue_depth'),
  };
}

// {tps, ttftMs, queue} between two samples (prev may be null).
export function rates(prev, cur) {
  const out = { tps: null, ttftMs: null, queue: cur.queue };
  if (!prev) return out;
  const dt = (cur.t - prev.t) / 1000;
  if (dt > 0 && cur.tokens >= prev.tokens) out.tps = (cur.tokens - prev.tokens) / dt;
  const dn = cur.ttftCount - prev.ttftCount;
  if (dn > 0) out.ttftMs = (1000 * (cur.ttftSum - prev.ttftSum)) / dn;
  return out;
}

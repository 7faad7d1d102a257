/* metrics.h — the daemon's counters and histograms for GET /metrics, rendered in the Prometheus
 * text exposition format 0.0.4.
 *
 * The registry holds one row per model name the matrix has ever had (rows are added, never
 * removed, when a reload brings new names; at most METRICS_MAX_MODELS): every label value is one of
 * those model names (or "" for a request whose model is not known), one of four endpoints,
 * one of a fixed list of HTTP statuses (others count as "other"), one of five unload reasons.
 * Nothing a client sends can create a label value, so the output stays bounded.
 * Gauges (queue depth, in flight, memory) are not stored here: the caller passes a snapshot of
 * the scheduler's state to metrics_render.
 *
 * Thread safety: every function may be called from any thread (one mutex inside). Functions
 * taking a model index accept any int: indexes outside [0, n_models) count under model="". */
#ifndef SY_METRICS_H
#define SY_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

typedef struct metrics metrics;

#define METRICS_NO_MODEL (-1) /* model="" : the request's model is unknown or was never named */

typedef enum metrics_endpoint {
  METRICS_EP_CHAT = 0,     /* POST /v1/chat/completions */
  METRICS_EP_COMPLETIONS,  /* POST /v1/completions */
  METRICS_EP_EMBEDDINGS,   /* POST /v1/embeddings */
  METRICS_EP_RERANK,       /* POST /v1/rerank (and its aliases) */
  METRICS_EP_TRANSCRIBE,   /* POST /v1/audio/transcriptions and /translations */
  METRICS_EP_SPEECH,       /* POST /v1/audio/speech */
  METRICS_EP_MESSAGES,     /* POST /v1/messages (Anthropic's Messages API) */
  METRICS_EP_MSG_COUNT,    /* POST /v1/messages/count_tokens */
  METRICS_EP_RESPONSES,    /* POST /v1/responses (OpenAI's Responses API) */
  METRICS_EP_RSP_TOKENS,   /* POST /v1/responses/input_tokens */
  METRICS_EP_OLLAMA_CHAT,  /* POST /api/chat (Ollama's API) */
  METRICS_EP_OLLAMA_GEN,   /* POST /api/generate */
  METRICS_EP_OLLAMA_EMBED, /* POST /api/embed and /api/embeddings */
  METRICS_EP_N
} metrics_endpoint;

typedef enum metrics_unload_reason {
  METRICS_UNLOAD_KEEP_ALIVE = 0, /* keep-alive ran out while idle */
  METRICS_UNLOAD_EVICTED,        /* made room for another model */
  METRICS_UNLOAD_CRASHED,        /* the worker process exited on its own */
  METRICS_UNLOAD_SHUTDOWN,       /* the daemon is stopping */
  METRICS_UNLOAD_KEEP_ALIVE_0,   /* keep_alive: 0, unloaded as its last request ended */
  METRICS_UNLOAD_ADMIN,          /* POST /api/unload */
  METRICS_UNLOAD_RELOAD,         /* a configuration reload removed or changed the model */
  METRICS_UNLOAD_N
} metrics_unload_reason;

/* One model's gauges, as the scheduler sees it now. */
typedef struct metrics_model_gauges {
  long long queued;             /* requests waiting in sched_acquire */
  long long inflight;           /* requests holding the worker */
  long long estimated_bytes;    /* footprint estimate */
  long long measured_bytes;     /* largest resident set seen, 0 = never */
  long long prompt_cache_bytes; /* its prompt cache in RAM, as its worker last told */
  bool loaded;
} metrics_model_gauges;

typedef struct metrics_gauges {
  const metrics_model_gauges *models; /* n_models entries, in row order (metrics_model's indexes) */
  size_t n_models;
  long long budget_bytes, used_bytes;
} metrics_gauges;

/* A registry for n_models models named names[0..n_models) (copied). NULL on out of memory. */
metrics *metrics_new(const char *const *names, size_t n_models);
void metrics_free(metrics *m);

#define METRICS_MAX_MODELS 4096
/* The row index of model `name`, adding a row if it has none (a reload brought a new name).
 * METRICS_NO_MODEL when the registry is full or out of memory. */
int metrics_model(metrics *m, const char *name);

/* A request to endpoint ep answered with HTTP status (499: the client went away before a status
 * was sent), after seconds since its body was read. */
void metrics_request(metrics *m, int model, metrics_endpoint ep, int status, double seconds);
/* Seconds from the request's body to its first generated text. */
void metrics_ttft(metrics *m, int model, double seconds);
/* Tokens of one finished request (prompt: also embedding inputs). */
void metrics_tokens(metrics *m, int model, long long prompt, long long generated);
/* A generation's prompt met the model's prompt cache: cached tokens reused (0: a miss). */
void metrics_prompt_cache(metrics *m, int model, long long cached);
/* A request ended early because its client went away. */
void metrics_cancelled(metrics *m, int model);
/* A load that ended (ok or failed) after seconds. */
void metrics_load(metrics *m, int model, bool ok, double seconds);
void metrics_unload(metrics *m, int model, metrics_unload_reason why);

/* Pipelines (pipeline.c): each stage's seconds and each failed step, under the pipeline's row. */
typedef enum metrics_stage {
  METRICS_STAGE_STT = 0,         /* the asr step, to its whole transcript */
  METRICS_STAGE_LLM,             /* transcribe_clean: the llm step, to its whole answer */
  METRICS_STAGE_LLM_FIRST_TOKEN, /* voice: the llm step, to its first text */
  METRICS_STAGE_TTS_FIRST_AUDIO, /* voice: the first sentence handed to the tts step, to its first
                                    audio */
  METRICS_STAGE_FIRST_AUDIO,     /* voice: the request's body to its first audio */
  METRICS_STAGE_TOTAL,           /* the request's body to the end of its answer */
  METRICS_STAGE_N
} metrics_stage;
typedef enum metrics_step {
  METRICS_STEP_ASR = 0,
  METRICS_STEP_LLM,
  METRICS_STEP_TTS,
  METRICS_STEP_N
} metrics_step;
void metrics_pipeline_stage(metrics *m, int model, metrics_stage stage, double seconds);
void metrics_pipeline_failure(metrics *m, int model, metrics_step step);

/* Append the whole exposition to out: counters and histograms from the registry, gauges from g
 * (NULL: no gauges). 0, or -1 when out refused to grow. */
int metrics_render(metrics *m, const metrics_gauges *g, sy_buf *out);

/* The Content-Type of metrics_render's output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif

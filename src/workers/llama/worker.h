/* worker.h — the switchyard-llama worker: one process per loaded model, serving the daemon over
 * the socketpair protocol of docs/PROTOCOL.md with llama.cpp's C API only.
 *
 * This header is the whole internal face of the worker's modules, listed from the bottom up:
 * each file calls only files listed before it (and src/common, src/chat, the engines), never
 * one after it, so the calls form a DAG:
 *   text.c          text_*    stop-string search and hold-back (pure functions)
 *   tok.c           tok_*     tokenising, one token's text
 *   reply.c         reply_*   the generate/embed frames (delta, done, embeddings)
 *   chat.c          chat_*    the template: a chat request into a prompt, parser and grammar
 *   embed.c         embed_*   embeddings and reranking
 *   slot_pick.c     sp_*      which slot a request takes, what of its cache it keeps (pure)
 *   prompt_cache.c  pcache_*  saved sequence states in RAM, least recently used out (no engine)
 *   prompt_disk.c   pdisk_*   saved states on disk: checked files, written atomically (no engine)
 *   gen.c           gen_*     generation: slots, FIFO of waiting requests, continuous batching,
 *                             the prompt cache
 *   speech_queue.c  spq_*     what both speech loops share: the FIFO, a speak's fields, voices,
 *                             sentence chunks, the backbone decode, audio frames, seeds
 *   speech_qwen3.c  q3s_*     the Qwen3-TTS speech loop
 *   speech.c        speech_*  text to speech (docs/TTS.md): the Pocket-TTS loop, and the front
 *                             that hands a Qwen3-TTS projector's calls to speech_qwen3.c
 *   rpc.c           rpc_*     a model's RPC servers as devices; the abort message to the daemon
 *   engine.c        engine_*  engine log routing, `load` (model, context, projector, the mode's
 *                             module), free
 *   devices.c       devices_* --list-devices
 *   main.c          arguments, process setup, the message loop, teardown
 * The reader thread, its inbox and the senders are src/common/wio.h. All process state lives
 * in one struct worker, owned by main(). Only the reader thread runs beside the main thread; it
 * touches nothing but the inbox (and sends nothing).
 * Nothing here may trust a field of a received message before checking its type and bounds. */
#ifndef SY_WORKER_LLAMA_H
#define SY_WORKER_LLAMA_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "llama.h"
#include "mtmd.h"
#include "tok.h"
#include "toolcall.h"
#include "wio.h"

#define WK_MAX_STOP 4                   /* stop strings per request */
#define WK_MAX_STOP_LEN 1024            /* bytes per stop string */
#define WK_INBOX_CAP 4096               /* received frames waiting for the main thread */
#define WK_MAX_WAITING 4096             /* generate requests waiting for a free slot */
#define WK_MAX_MESSAGES 65536           /* chat messages per request */
#define WK_MAX_EMBED_INPUTS 65536       /* strings per embed request */
#define WK_MAX_CTX (1 << 22)            /* tokens per sequence */
#define WK_MAX_RERANK_PROMPT (16 << 20) /* bytes of one query/document prompt from a template */
#define WK_MAX_IMAGES 16                /* images per generate request */
#define WK_MAX_IMAGE_SIDE 16384         /* pixels per image side */
#define WK_MAX_AUDIO 8                  /* audio clips per generate request */
#define WK_MAX_AUDIO_SAMPLES (16000L * 3600) /* samples per clip: an hour at 16 kHz */
#define WK_AUDIO_RATE 16000                  /* the rate the daemon sends audio at */
#define WK_MAX_MEDIA (WK_MAX_IMAGES + WK_MAX_AUDIO)

/* ---- the worker ------------------------------------------------------------------------ */

typedef struct engine_log_line {
  pthread_mutex_t mu;
  char buf[1024];
  size_t len;
  int level; /* sy_log level of the line being assembled */
} engine_log_line;

/* What a worker serves, fixed at load (load's "mode", and the projector). */
typedef enum wk_mode {
  WK_MODE_GENERATE = 0, /* text generation (chat, completions; images/audio in with a projector) */
  WK_MODE_EMBED,        /* an embedding context: `embed` */
  WK_MODE_RERANK,       /* an embedding context with pooling rank: `rerank` (query, document) */
  WK_MODE_SPEECH,       /* the projector generates audio: `speak` and `voices` only */
} wk_mode;

typedef struct gen_state gen_state;
typedef struct embed_state embed_state;
typedef struct speech_state speech_state;
typedef struct q3s_state q3s_state;

typedef struct worker {
  wio_out out;  /* replies (wio.h); out.dead once a send failed: the daemon is gone */
  wio_inbox in; /* the reader thread and its bounded queue (wio.h) */

  engine_log_line logline;

  /* engine (engine.c) */
  struct llama_model *model;
  struct llama_context *ctx;
  int n_threads_max; /* threads it was loaded with: the most a "threads" op may set */
  const struct llama_vocab *vocab;
  tok_cut cut;          /* where tok_tokenize may cut a long text (tok.h) */
  wk_mode mode;         /* what this worker serves, fixed at load */
  bool gpu_offload;     /* some layers run on a GPU */
  bool deterministic;   /* batch-invariant generation (load's "deterministic"); else throughput */
  int64_t cache_ram;    /* bytes the prompt cache in RAM may hold at first (load's "cache_ram") */
  int64_t cache_disk;   /* bytes its folder on disk may hold (load's "cache_disk"; 0 = off) */
  char *cache_dir;      /* that folder (load's "cache_dir"), or NULL */
  char *cache_identity; /* what makes a saved state usable here (prompt_disk.h's key) */
  int load_pct;         /* last load progress reported (percent), -1 before the first */
  int32_t
      n_ctx_seq; /* tokens per sequence we enforce (what load asked for, at most the engine's) */
  int32_t n_parallel;              /* sequences */
  int32_t n_batch;                 /* tokens per llama_decode */
  int32_t n_embd;                  /* embedding width reported (n_embd_out in embed mode) */
  enum llama_pooling_type pooling; /* embed mode: what the context pools with */
  mtmd_context *mtmd;      /* the projector (load's "mmproj": images and/or audio), or NULL */
  int32_t sample_rate;     /* speech mode: Hz of the PCM */
  char audio_refused[400]; /* why the projector's audio is refused (audio_check.h), or "" */
  llama_token asr_sep;     /* Qwen3-ASR's "<asr_text>" control token (chat.c), or -1 */
  /* chat (chat.c) */
  enum { WK_CHAT_NONE = 0, WK_CHAT_JINJA, WK_CHAT_BUILTIN } chat_kind;
  struct jinja_tmpl *jt, *jt_tools;        /* the template, and its tool_use variant (or NULL) */
  sy_chat_format chat_fmt, chat_fmt_tools; /* tool-call format and reasoning markers of each */
  char *chat_builtin;                      /* WK_CHAT_BUILTIN: llama.cpp's template name */
  char *bos_text, *eos_text;               /* the special tokens' text, for templates */

  gen_state *gen;       /* generate mode */
  embed_state *embed;   /* embed mode */
  speech_state *speech; /* speech mode */
  q3s_state *speech_q3; /* speech mode, Qwen3-TTS (speech_qwen3.c) */
} worker;

/* True in the modes with an embedding context (embed, rerank). */
static inline bool wk_embeds(const worker *w) {
  return w->mode == WK_MODE_EMBED || w->mode == WK_MODE_RERANK;
}

/* ---- text.c ----------------------------------------------------------------------------- */

/* Earliest start of any of the stop strings in s[0..n), or -1. */
long text_find_stop(const char *s, size_t n, char *const *stops, const size_t *stop_lens,
                    int n_stops);
/* Length of the longest suffix of s[0..n) that is a proper prefix of some stop string. */
size_t text_stop_holdback(const char *s, size_t n, char *const *stops, const size_t *stop_lens,
                          int n_stops);

/* ---- tok.c ------------------------------------------------------------------------------ */

/* Tokenise text. Returns 0 and a malloc'd array in *out (n in *n_out), or -1. */
int tok_tokenize(const worker *w, const char *text, size_t len, bool add_special,
                 bool parse_special, llama_token **out, int32_t *n_out);
/* Append the text of one token (special tokens render as nothing) to *buf (grown as needed).
 * Returns 0 or -1 on allocation failure. */
int tok_piece(const worker *w, llama_token tok, char **buf, size_t *len, size_t *cap);

/* ---- reply.c ---------------------------------------------------------------------------- */

/* The generate/embed frames (each through wio_send; a failed send marks w->out.dead). Error and
 * other frames are sent with wio.h directly. */
void reply_delta(worker *w, wio_id id, const char *text, size_t len);
/* A structured delta (OpenAI's {"reasoning_content"} or {"tool_calls"}; stolen). */
void reply_delta_obj(worker *w, wio_id id, json_t *delta);
/* What a generate's done reports: prompt tokens (cached_tokens of them reused from the slot's
 * cache, not decoded again), generated tokens, and the time of each phase. */
typedef struct reply_usage {
  int32_t prompt_tokens, cached_tokens, completion_tokens;
  double prompt_ms, gen_ms;
} reply_usage;
/* The done frame; stop (stop_len bytes, or NULL): the stop string that ended the answer. */
void reply_done(worker *w, wio_id id, const char *finish_reason, const char *stop, size_t stop_len,
                const reply_usage *u);
void reply_embeddings(worker *w, wio_id id, int32_t n, int32_t dim, int64_t prompt_tokens,
                      const float *data);

/* ---- chat.c ---------------------------------------------------------------------------- */

/* What a chat request needs besides sampling: the rendered prompt, whether it leaves the model
 * inside its reasoning block, the output parser, and a grammar (or NULL). */
typedef struct chat_prep {
  char *prompt;
  bool thinking_open;
  struct sy_tc_parser *parser;
  char *grammar;
} chat_prep;

/* At load: choose the template (configured text or name, else the GGUF's) and the output format.
 * -1 + err only for a configured template that cannot be used. */
int chat_load(worker *w, const char *configured, char *err, size_t err_len);
void chat_unload(worker *w);
/* Build the prompt, parser and grammar of a generate message with "messages". 0, or -1 with the
 * HTTP status, code and message of the failure. */
int chat_prepare(worker *w, const json_t *hdr, chat_prep *p, int *status, const char **code,
                 char *msg, size_t msg_len);
void chat_prep_clear(chat_prep *p);

/* ---- embed.c ---------------------------------------------------------------------------- */

int embed_init(worker *w);
void embed_free(worker *w);
/* An embed frame: computes and answers (embeddings or error) before returning. */
void embed_run(worker *w, wio_id id, const json_t *hdr);
/* A rerank frame (rerank mode): one score per document, sent as an embeddings reply of dim 1. */
void embed_rerank(worker *w, wio_id id, const json_t *hdr);

/* ---- gen.c ------------------------------------------------------------------------------ */

int gen_init(worker *w);
void gen_free(worker *w);
/* A generate frame (header, and the RGB bytes of its "images" as payload); answers errors
 * itself. */
void gen_submit(worker *w, wio_id id, const json_t *hdr, const void *payload, size_t payload_len);
/* Cancel id: running or waiting → done "cancelled"; unknown → nothing. */
void gen_cancel(worker *w, wio_id id);
/* A new limit for the prompt cache in RAM (op cache_limit): entries go until it holds. */
void gen_cache_limit(worker *w, int64_t bytes);
/* Before the worker exits on shutdown: the hottest saved states go to the disk cache. */
void gen_persist(worker *w);
/* True while any request runs or waits. */
bool gen_busy(const worker *w);
/* One iteration of the decode loop: start waiting requests on free slots, one llama_decode for
 * the next token of every generating slot, then prompt chunks (about n_batch tokens); sample,
 * stream. */
void gen_step(worker *w);

/* ---- speech_queue.c: what both speech loops share --------------------------------------- */

#define SPQ_MAX_INPUT (64 * 1024) /* bytes of text per speak request */
#define SPQ_MAX_WAITING 256       /* speak requests waiting behind the one being spoken */
#define SPQ_MAX_VOICES 64         /* configured voices per model */
#define SPQ_WAV_SEED 0x80000000u  /* GEN_WAV draws nothing; GEN_CODE seeds are all below this */

/* The speak requests waiting behind the one being spoken: each request starts with a spq_item
 * (so an item is its request). FIFO order. */
typedef struct spq_item {
  wio_id id;
  struct spq_item *next;
} spq_item;
typedef struct spq_fifo {
  spq_item *head, *tail;
  size_t n;
} spq_fifo;
void spq_push(spq_fifo *f, spq_item *it);
spq_item *spq_pop(spq_fifo *f);               /* NULL when empty */
spq_item *spq_remove(spq_fifo *f, wio_id id); /* NULL when no such id waits */

/* A voice: a configured reference clip (path) or one a request brought (clip), and what the
 * projector's encoder made of it on first use. */
typedef struct spq_voice {
  char *name, *path;
  char *lang;          /* the configured language, or NULL (Qwen3-TTS speaks in it) */
  unsigned char *clip; /* or the clip itself (a WAV the daemon wrote), clip_len bytes */
  size_t clip_len;
  float *rows; /* n_rows x n_embd: Pocket-TTS's voice frames, Qwen3-TTS's one x-vector */
  int n_rows;
} spq_voice;

typedef struct spq_req {
  spq_item it; /* first: the queue's link and the request's id */
  char *text;
  int voice;        /* index into the voices, or -1 */
  spq_voice *own;   /* a reference clip the request brought (voice_upload), or NULL */
  llama_token lang; /* Qwen3-TTS: the language it is spoken in */
  uint32_t seed;
} spq_req;

typedef struct spq_chunk {
  llama_token *toks;
  int n;
} spq_chunk;

/* What every speech loop keeps; the first member of each loop's state. */
typedef struct spq_core {
  spq_fifo q; /* the requests waiting behind the current one */
  spq_voice voices[SPQ_MAX_VOICES];
  int n_voices;
  uint32_t last_seed; /* the seed of the last mtmd_gen_audio_process, once have_last */
  bool have_last;
  /* the request being spoken */
  spq_req *cur;
  spq_chunk *chunks; /* its sentences, as token chunks; chunk is the one being spoken */
  int n_chunks, chunk;
  bool prompted; /* the current chunk's prompt is decoded */
  llama_pos pos; /* the backbone's next position */
  float *h;      /* the backbone's last hidden state, n_embd */
  int step, budget;
  char *dec_state; /* the audio decoder's state (GEN_WAV), dec_state_n bytes */
  size_t dec_state_n;
  uint32_t frame_no, seed_base;
  int64_t samples; /* sent so far */
} spq_core;

/* At load: the hidden-state buffer and load's voices ({name: path | {audio, language?}}). 0, or
 * -1 + err. */
int spq_core_init(worker *w, spq_core *c, const json_t *voices, char *err, size_t err_len);
/* Free the current request, the waiting ones (unanswered), the voices and h. */
void spq_core_free(spq_core *c);
bool spq_busy(const spq_core *c);

/* The fields every speech loop reads from a speak frame, checked (an error is answered here): the
 * text (a malloc'd copy, NULs as spaces; the caller frees it), the voice (an index into c's
 * voices, -1 for none; an unknown name is refused when voices are configured) and the seed (the
 * request's, mixed, or one from the clock). 0, or -1 (answered). */
typedef struct spq_req_args {
  char *text;
  int voice;
  uint32_t seed;
} spq_req_args;
int spq_args(worker *w, const spq_core *c, wio_id id, const json_t *hdr, spq_req_args *out);
/* Queue a checked request (a->text is taken) with its language and its own clip (clip_len 0:
 * none); a full queue or out of memory is answered here. */
void spq_enqueue(worker *w, spq_core *c, wio_id id, spq_req_args *a, llama_token lang,
                 const void *clip, size_t clip_len);
/* The next waiting request (there is one) becomes c->cur: the frame count, samples and decoder
 * state start afresh, not prompted. */
spq_req *spq_begin(spq_core *c);
/* Free the current request, its chunks and the decoder state (a loop frees its own parts). */
void spq_end(spq_core *c);
/* A waiting request cancelled: removed and answered done "cancelled". false: none waits. */
bool spq_cancel_waiting(worker *w, spq_core *c, wio_id id);
/* The current request's voice: its own clip, else the configured one, else NULL. */
spq_voice *spq_cur_voice(spq_core *c);

/* Encode a voice's clip once with the projector's audio encoder (the caller checked it has one):
 * v->rows, 1..max_rows of them. 0, or -1 + msg ("voice '...': ..."). */
int spq_voice_encode(worker *w, spq_voice *v, int max_rows, char *msg, size_t msg_len);
/* The id of the token whose text is s, or -1. */
llama_token spq_find_token(const worker *w, const char *s);
/* Tokenize s[0..n) (no special tokens) and append it to c's chunks, cut every max_tokens. 0, or
 * -1 on out of memory / tokenizer failure. */
int spq_add_sentence(worker *w, spq_core *c, const char *s, size_t n, int max_tokens);
/* End of the sentence that starts at s[i] (after ./!/? and a space or the end, a CJK full
 * stop, a blank line). */
size_t spq_sentence_end(const char *s, size_t n, size_t i);

/* Decode n embedding rows (rows) or tokens (toks) at c->pos, each position given n_pos times (1,
 * or M-RoPE's 4 streams); c->h = the last hidden state, the last row's logits stay readable. 0 or
 * -1. */
int spq_decode(worker *w, spq_core *c, const float *rows, const llama_token *toks, int n,
               int n_pos);
/* c->dec_state = the decoder state GEN_WAV returned. 0 or -1. */
int spq_keep_state(spq_core *c, const struct mtmd_gen_out *out);

/* A 64-bit value mixed into a 32-bit seed (splitmix's finaliser). */
uint32_t spq_mix32(uint64_t x);
/* GEN_CODE's seed for frame k of the current request: a pure function of (seed, k). */
uint32_t spq_frame_seed(const spq_core *c, uint32_t k);
void spq_note_seed(spq_core *c, uint32_t s);
/* clip reseeds its generator only when the seed changes: when frame 0's seed is the last one
 * used, one throw-away GEN_WAV over in's feats or codes (the caller's) with another seed. */
void spq_force_reseed(worker *w, spq_core *c, struct mtmd_gen_inp *in);

/* n samples of the current request as an `audio` frame (counted in c->samples). */
void spq_send_audio(worker *w, spq_core *c, const float *pcm, size_t n);
void spq_reply_done(worker *w, wio_id id, int64_t samples, const char *reason);
/* A prompt that failed (msg from the loop): 400 invalid_voice for "voice ..." messages, else 500.
 */
void spq_reply_prompt_failed(worker *w, wio_id id, const char *msg);
/* The `done` answering `voices`: {voices: [{id, name}] of c's voices (none when c is NULL), rate}.
 */
void spq_reply_voices(worker *w, wio_id id, const spq_core *c);

/* ---- speech_qwen3.c: the same calls for a Qwen3-TTS projector (speech.c dispatches) ------ */

int q3s_init(worker *w, const char *model_path, const json_t *voices, char *err, size_t err_len);
void q3s_free(worker *w);
void q3s_submit(worker *w, wio_id id, const json_t *hdr, const void *clip, size_t clip_len);
void q3s_cancel(worker *w, wio_id id);
void q3s_voices(worker *w, wio_id id);
bool q3s_busy(const worker *w);
void q3s_step(worker *w);

/* ---- speech.c --------------------------------------------------------------------------- */

/* At load, after the projector: set up the speech pipeline; voices is load's {name: clip path}
 * object (or NULL). 0, or -1 + err (a pipeline or vocabulary this worker cannot drive). */
int speech_init(worker *w, const char *model_path, const json_t *voices, char *err, size_t err_len);
void speech_free(worker *w);
/* A speak frame: validated and queued (errors answered here). */
void speech_submit(worker *w, wio_id id, const json_t *hdr, const void *clip, size_t clip_len);
/* Cancel id, running or waiting (done "cancelled"); unknown → nothing. */
void speech_cancel(worker *w, wio_id id);
/* A voices frame: the configured voices, as a done. */
void speech_voices(worker *w, wio_id id);
bool speech_busy(const worker *w);
/* One unit of work: start a request, prompt a sentence, or one frame (and its audio). */
void speech_step(worker *w);

/* ---- rpc.c: ggml's RPC servers as devices (matrix key `rpc:`) --------------------------- */

/* Add the servers eps[0..n) ("host:port") to ggml's device registry, each reached first with a
 * bounded connect; a server added before is skipped. 0, or -1 with why in err (nothing about the
 * failing server registered). Main thread only. */
int rpc_add_servers(const char *const *eps, size_t n, char *err, size_t errlen);
/* From now on, an abort inside ggml (an RPC server lost mid-request) first sends frame "fatal"
 * with ggml's message on out (docs/PROTOCOL.md). out must outlive the process's use of ggml. */
void rpc_fatal_install(wio_out *out);

/* ---- engine.c --------------------------------------------------------------------------- */

/* Route llama.cpp/ggml logs into sy_log (call before anything else touches the engine). */
void engine_log_install(worker *w);
/* Handle the load message: load the model, create the context, send ready. On failure sends
 * error id 0 and returns -1 (the caller exits 1). */
int engine_load(worker *w, const json_t *hdr);
void engine_free(worker *w);

/* ---- devices.c: print the devices this engine build sees as JSON (--list-devices) --------- */

/* rpc: NULL, or "host:port,host:port" servers to add first (rpc_add_servers; their devices are
 * listed with "endpoint" and their index on it, "rpc_device"; a server that cannot be reached is
 * listed in "rpc_unreachable" with the reason). The exit status. */
int devices_print(const char *rpc);

#endif

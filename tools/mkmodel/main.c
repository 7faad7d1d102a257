/* main.c — mkmodel: write a random-weight GGUF model of a real architecture (llama, qwen2, qwen3,
 * bert, the hybrid qwen3next, ...) with a real tokenizer. llama.cpp's own
 * llama_model_init_from_user builds the model from metadata (so names, shapes and types are exactly
 * what its loader expects); mkmodel fills the weights and writes the file (save.c says why not
 * llama_model_save_to_file). For tests and benchmarks: the structure is real, the output is
 * gibberish. See docs/MKMODEL.md. Must never overwrite its output with a partial file, and never
 * download anything. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch_qwenvl.h"
#include "aproj.h"
#include "argnum.h"
#include "clock.h"
#include "fill.h"
#include "llama.h"
#include "meta.h"
#include "mmproj.h"
#include "moe.h"
#include "mtmd-helper.h"
#include "mtmd.h"
#include "quant.h"
#include "save.h"
#include "spec.h"
#include "tts_qwen3.h"
#include "verify.h"

#define MK_EXIT_USAGE 2

static int verbose;

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: mkmodel (--preset NAME | --arch ARCH) -o OUT.gguf [options]\n"
      "Writes a random-weight GGUF model of a real architecture with a real tokenizer.\n"
      "\n"
      "  --preset NAME        %s\n"
      "  --arch ARCH          llama | qwen2 | qwen3 | bert | pockettts | qwen3tts | qwen3next |\n"
      "                       qwen2vl | qwen3vl\n"
      "                       qwen3moe | qwen3vlmoe | qwen35 | qwen35moe | nemotron_h_moe\n"
      "                       (defaults: that arch's tiny preset; qwen3next: tiny-hybrid, a\n"
      "                       hybrid of attention and recurrent layers)\n"
      "  --vocab PATH|NAME    vocabulary GGUF; a NAME like qwen2 means\n"
      "                       $SWITCHYARD_VOCAB_DIR/ggml-vocab-qwen2.gguf\n"
      "                       (defaults: llama -> llama-spm, qwen2/qwen3/qwen3next -> qwen2,\n"
      "                       bert -> bert-bge)\n"
      "  --n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N --ctx N --head-dim N\n"
      "  --type T             f32 | f16 | q8_0 | q4_0 | q4_k | q5_k | q6_k, or the mixes q4_k_m |\n"
      "                       q5_k_m (as llama-quantize's): 2-D matrices (default f16; norms stay "
      "f32;\n"
      "                       a matrix whose rows do not fit T's block falls back: "
      "q4_k->q5_0->q8_0->f16)\n"
      "  --seed N             weights are a pure function of seed, shape and type (default 42)\n"
      "  --chat-template T    none | chatml | llama3 | vocab | PATH.jinja\n"
      "                       (default: chatml for qwen2/qwen3/qwen3next, none for llama and "
      "bert)\n"
      "  --pooling P          none | mean | cls | last | rank (bert default mean; others none;\n"
      "                       rank: a reranker with a classification head, bert only)\n"
      "  --rerank-template T  tokenizer.chat_template.rerank: the text of a reranker's pair,\n"
      "                       with {query} and {document}, e.g.\n"
      "                       '[CLS]{query}[SEP]{document}[SEP]'\n"
      "  --tied | --untied    output matrix shared with the token embeddings (qwen default) or "
      "not\n"
      "  --rope-base F --norm-eps F --name S\n"
      "  --threads N          threads for generating and quantizing (default: all CPUs)\n"
      "  --fast               matrices assembled from a pool of %d random blocks already in the\n"
      "                       weight type (memcpy speed, for multi-GB models; other bytes)\n"
      "  --mmproj PATH        also write a random-weight projector for this text model: by\n"
      "                       default LLaVA-style vision (mtmd projector 'mlp', %d tokens per\n"
      "                       image); with --arch pockettts: its speech\n"
      "                       generation projector (pockettts_gen); with --arch qwen3tts:\n"
      "                       qwen3tts_gen + qwen3tts_spkenc (real widths for a 1024-wide "
      "talker);\n"
      "                       with qwen2vl / qwen3vl: qwen2.5vl_merger / qwen3vl_merger\n"
      "  --mmproj-kind K      vision (default) | audio: an Ultravox-style audio projector "
      "(whisper\n"
      "                       encoder, 16 kHz, %d tokens per started 30 s of audio); the audio\n"
      "                       LLM presets (tiny-voxtral, tiny-qwen3asr, tiny-ultravox, ...)\n"
      "                       write their own projector (voxtral, qwen3a, ultravox x8)\n"
      "  --verify             load the written file with llama.cpp and run it once (with\n"
      "                       --mmproj: also encode one image, or 1 s of audio, through mtmd)\n"
      "  --verbose            show llama.cpp's log\n"
      "  -o, --output PATH    output file (written as PATH.part, then renamed)\n"
      "  -h, --help\n"
      "Exit status: 0 ok, 1 failure, 2 bad usage.\n",
      mk_preset_names(), MK_POOL_BLOCKS, MK_MMPROJ_IMAGE_TOKENS, MK_AMMPROJ_WINDOW_TOKENS);
}

static void die_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "mkmodel: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n\n");
  usage(stderr);
  exit(MK_EXIT_USAGE);
}

static long parse_long(const char *opt, const char *s, long lo, long hi) {
  long v = 0;
  if (sy_parse_long(s, lo, hi, &v) != 0) {
    char msg[160];
    snprintf(msg, sizeof(msg), "%s needs an integer in %ld..%ld, not '%%s'", opt, lo, hi);
    die_usage(msg, s);
  }
  return v;
}

static float parse_float(const char *opt, const char *s) {
  char *end = NULL;
  errno = 0;
  float v = strtof(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0f)) {
    char msg[160];
    snprintf(msg, sizeof(msg), "%s needs a non-negative number, not '%%s'", opt);
    die_usage(msg, s);
  }
  return v;
}

/* Fail before the slow part when OUT's folder cannot take the file or OUT is a folder. */
static void check_output(const char *out) {
  char dir[4096];
  struct stat st;
  if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
    die_usage("-o %s is a folder; give a file name", out);
  snprintf(dir, sizeof(dir), "%s", out);
  char *slash = strrchr(dir, '/');
  if (!slash)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  if (access(dir, W_OK) != 0) {
    fprintf(stderr, "mkmodel: cannot write into %s: %s\n", dir, strerror(errno));
    exit(1);
  }
}

static void log_cb(enum ggml_log_level level, const char *text, void *ud) {
  (void)ud;
  if (verbose || level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

enum {
  OPT_PRESET = 256,
  OPT_ARCH,
  OPT_VOCAB,
  OPT_EMBD,
  OPT_LAYER,
  OPT_HEAD,
  OPT_HEAD_KV,
  OPT_FF,
  OPT_CTX,
  OPT_HEAD_DIM,
  OPT_TYPE,
  OPT_SEED,
  OPT_TEMPLATE,
  OPT_POOLING,
  OPT_RERANK_TEMPLATE,
  OPT_TIED,
  OPT_UNTIED,
  OPT_ROPE,
  OPT_EPS,
  OPT_NAME,
  OPT_THREADS,
  OPT_VERIFY,
  OPT_VERBOSE,
  OPT_MMPROJ,
  OPT_MMPROJ_KIND,
  OPT_FAST,
};

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"preset", required_argument, NULL, OPT_PRESET},
      {"arch", required_argument, NULL, OPT_ARCH},
      {"vocab", required_argument, NULL, OPT_VOCAB},
      {"n-embd", required_argument, NULL, OPT_EMBD},
      {"n-layer", required_argument, NULL, OPT_LAYER},
      {"n-head", required_argument, NULL, OPT_HEAD},
      {"n-head-kv", required_argument, NULL, OPT_HEAD_KV},
      {"n-ff", required_argument, NULL, OPT_FF},
      {"ctx", required_argument, NULL, OPT_CTX},
      {"head-dim", required_argument, NULL, OPT_HEAD_DIM},
      {"type", required_argument, NULL, OPT_TYPE},
      {"seed", required_argument, NULL, OPT_SEED},
      {"chat-template", required_argument, NULL, OPT_TEMPLATE},
      {"pooling", required_argument, NULL, OPT_POOLING},
      {"rerank-template", required_argument, NULL, OPT_RERANK_TEMPLATE},
      {"tied", no_argument, NULL, OPT_TIED},
      {"untied", no_argument, NULL, OPT_UNTIED},
      {"rope-base", required_argument, NULL, OPT_ROPE},
      {"norm-eps", required_argument, NULL, OPT_EPS},
      {"name", required_argument, NULL, OPT_NAME},
      {"threads", required_argument, NULL, OPT_THREADS},
      {"verify", no_argument, NULL, OPT_VERIFY},
      {"verbose", no_argument, NULL, OPT_VERBOSE},
      {"mmproj", required_argument, NULL, OPT_MMPROJ},
      {"mmproj-kind", required_argument, NULL, OPT_MMPROJ_KIND},
      {"fast", no_argument, NULL, OPT_FAST},
      {"output", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  struct mk_spec given, s;
  mk_spec_init(&given);
  const char *preset = NULL, *out = NULL, *rerank_tmpl = NULL, *mmproj = NULL;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = ncpu > 0 ? (int)ncpu : 1;
  int do_verify = 0;
  int audio_proj = 0; /* --mmproj-kind audio */
  int fast = 0;       /* --fast: matrices from a pool of quantized blocks (quant.h) */

  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
    switch (c) {
      case OPT_PRESET:
        preset = optarg;
        break;
      case OPT_ARCH:
        if (mk_arch_parse(optarg) < 0)
          die_usage(
              "unknown --arch '%s' (llama, qwen2, qwen3, bert, pockettts, qwen3tts, qwen3next, "
              "qwen2vl, qwen3vl, qwen3moe, qwen3vlmoe, qwen35, qwen35moe, nemotron_h_moe)",
              optarg);
        given.arch = (enum mk_arch)mk_arch_parse(optarg);
        break;
      case OPT_VOCAB:
        given.vocab = optarg;
        break;
      case OPT_EMBD:
        given.n_embd = (int)parse_long("--n-embd", optarg, 1, 65536);
        break;
      case OPT_LAYER:
        given.n_layer = (int)parse_long("--n-layer", optarg, 1, 256);
        break;
      case OPT_HEAD:
        given.n_head = (int)parse_long("--n-head", optarg, 1, 1024);
        break;
      case OPT_HEAD_KV:
        given.n_head_kv = (int)parse_long("--n-head-kv", optarg, 1, 1024);
        break;
      case OPT_FF:
        given.n_ff = (int)parse_long("--n-ff", optarg, 1, 1L << 20);
        break;
      case OPT_CTX:
        given.n_ctx = (int)parse_long("--ctx", optarg, 1, 1L << 20);
        break;
      case OPT_HEAD_DIM:
        given.head_dim = (int)parse_long("--head-dim", optarg, 1, 1024);
        break;
      case OPT_TYPE:
        if (mk_mix_parse(optarg, &given.mix, &given.wtype) != 0)
          given.wtype = mk_type_parse(optarg);
        if (given.wtype == GGML_TYPE_COUNT)
          die_usage("unknown --type '%s' (f32, f16, q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m, q5_k_m)",
                    optarg);
        break;
      case OPT_SEED:
        given.seed = (uint64_t)parse_long("--seed", optarg, 0, LONG_MAX);
        given.has_seed = 1;
        break;
      case OPT_TEMPLATE:
        given.chat_template = optarg;
        break;
      case OPT_POOLING:
        given.pooling = mk_pooling_parse(optarg);
        if (given.pooling == -2)
          die_usage("unknown --pooling '%s' (none, mean, cls, last, rank)", optarg);
        break;
      case OPT_TIED:
        given.tied = 1;
        break;
      case OPT_UNTIED:
        given.tied = 0;
        break;
      case OPT_ROPE:
        given.rope_base = parse_float("--rope-base", optarg);
        break;
      case OPT_EPS:
        given.norm_eps = parse_float("--norm-eps", optarg);
        break;
      case OPT_RERANK_TEMPLATE:
        rerank_tmpl = optarg;
        break;
      case OPT_NAME:
        given.name = optarg;
        break;
      case OPT_THREADS:
        threads = (int)parse_long("--threads", optarg, 1, 256);
        break;
      case OPT_VERIFY:
        do_verify = 1;
        break;
      case OPT_VERBOSE:
        verbose = 1;
        break;
      case OPT_MMPROJ:
        mmproj = optarg;
        break;
      case OPT_MMPROJ_KIND:
        if (strcmp(optarg, "vision") != 0 && strcmp(optarg, "audio") != 0)
          die_usage("unknown --mmproj-kind '%s' (vision, audio)", optarg);
        audio_proj = strcmp(optarg, "audio") == 0;
        break;
      case OPT_FAST:
        fast = 1;
        break;
      case 'o':
        out = optarg;
        break;
      case 'h':
        usage(stdout);
        return 0;
      case ':':
        die_usage("option %s needs a value", argv[optind - 1]);
        break;
      default:
        die_usage("unknown option '%s'", argv[optind - 1]);
        break;
    }
  }
  if (optind < argc) die_usage("unexpected argument '%s'", argv[optind]);
  if (!out) die_usage("%s", "no output: give -o OUT.gguf");
  if (rerank_tmpl && strlen(rerank_tmpl) > 65536) die_usage("%s", "--rerank-template is too long");

  mk_spec_init(&s);
  if (preset) {
    if (mk_spec_preset(&s, preset) != 0) die_usage("unknown --preset '%s'", preset);
    if (given.arch < MK_ARCH_COUNT && given.arch != s.arch)
      die_usage("--arch conflicts with --preset %s", preset);
  }
  mk_spec_overlay(&s, &given);
  if (s.arch >= MK_ARCH_COUNT) die_usage("%s", "give --arch or --preset");
  mk_spec_defaults(&s);
  char err[1024];
  if (mk_spec_check(&s, err, sizeof(err)) != 0) die_usage("%s", err);
  if (mk_qwenvl_is(&s) && mk_qwenvl_check(&s, err, sizeof(err)) != 0) die_usage("%s", err);
  check_output(out);
  if (mmproj) {
    if (s.arch == MK_ARCH_BERT || s.arch == MK_ARCH_QWEN3NEXT ||
        (mk_moe_arch(s.arch) && !mk_qwenvl_is(&s)) ||
        (s.arch != MK_ARCH_POCKETTTS && s.arch != MK_ARCH_QWEN3TTS && s.pooling >= 0))
      die_usage(
          "%s",
          "--mmproj needs a generative text model (llama, qwen2, qwen3 without --pooling; the "
          "Qwen-VL ones)");
    check_output(mmproj);
  }
  if (audio_proj && !mmproj) die_usage("%s", "--mmproj-kind needs --mmproj PATH");
  if (audio_proj && mk_qwenvl_is(&s))
    die_usage("%s", "qwen2vl/qwen3vl take a vision projector: no --mmproj-kind audio");

  /* the audio projector: an audio LLM preset's family, else --mmproj-kind audio's Ultravox */
  const int alm = s.alm ? s.alm : MK_ALM_ULTRAVOX, stack = s.alm ? s.alm_stack : MK_AMMPROJ_STACK;
  llama_log_set(log_cb, NULL);
  mtmd_log_set(log_cb, NULL);
  mtmd_helper_log_set(log_cb, NULL);
  llama_backend_init();
  double t0 = sy_mono_s();
  int rc = 1;
  struct gguf_context *vocab = NULL, *meta = NULL;
  struct llama_model *model = NULL;
  char *tmpl = NULL;
  char vocab_path[4096];
  struct mk_fill fill;
  memset(&fill, 0, sizeof(fill));
  fill.spec = &s;
  fill.threads = threads;
  fill.fast = fast;

  if (mk_vocab_path(s.vocab, vocab_path, sizeof(vocab_path), err, sizeof(err)) != 0) goto fail;
  int n_vocab = 0;
  vocab = mk_vocab_load(vocab_path, &n_vocab, err, sizeof(err));
  if (!vocab) goto fail;
  if (mk_chat_template_load(s.chat_template, vocab, &tmpl, err, sizeof(err)) != 0) goto fail;

  fprintf(stderr,
          "mkmodel: %s %s: n_vocab %d (%s), n_embd %d, n_layer %d, n_head %d/%d, head_dim %d, n_ff "
          "%d, ctx %d, "
          "%s%s, seed %llu, %d threads\n",
          s.name, mk_arch_name(s.arch), n_vocab, vocab_path, s.n_embd, s.n_layer, s.n_head,
          s.n_head_kv, s.head_dim, s.n_ff, s.n_ctx, mk_quant_name(&s), s.tied ? ", tied" : "",
          (unsigned long long)s.seed, threads);

  meta = mk_meta_new(&s, vocab, n_vocab);
  if (!meta) {
    snprintf(err, sizeof(err), "out of memory building the metadata");
    goto fail;
  }
  /* llama-server builds (query, document) pairs from this instead of [BOS] q [EOS] [SEP] d [EOS] */
  if (rerank_tmpl) gguf_set_val_str(meta, "tokenizer.chat_template.rerank", rerank_tmpl);
  struct llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0; /* weights in host memory: filled and written in place */
  model = llama_model_init_from_user(meta, mk_fill_tensor, &fill, mp);
  if (!model || fill.failed) {
    snprintf(err, sizeof(err),
             "llama_model_init_from_user failed%s (run with --verbose for llama.cpp's log)",
             fill.failed ? " while filling tensors (out of memory?)" : "");
    goto fail;
  }
  double t1 = sy_mono_s();

  struct mk_save_info info;
  if (mk_save(out, &s, meta, tmpl, fill.kept, fill.n_kept, &info, err, sizeof(err)) != 0) goto fail;
  llama_model_free(model);
  model = NULL;
  double t2 = sy_mono_s();
  fprintf(stderr,
          "mkmodel: wrote %s: %d tensors, %.1fM params, %.1f MiB (%d matrices in a fallback type, "
          "%d loader-only "
          "tensors left out); generate %.2fs, write %.2fs\n",
          out, info.n_tensors, (double)info.n_params / 1e6,
          (double)info.n_bytes / (1024.0 * 1024.0), fill.n_fallback, fill.n_zeroed, t1 - t0,
          t2 - t1);

  if (mmproj && s.arch == MK_ARCH_POCKETTTS) {
    uint64_t mbytes = 0;
    if (mk_ttsproj_write(mmproj, s.n_embd, s.seed, &mbytes, err, sizeof(err)) != 0) goto fail;
    fprintf(stderr,
            "mkmodel: wrote %s: pocket-tts generation projector 'pockettts_gen' for n_embd %d, "
            "%d Hz, %d samples per frame, %.2f MiB\n",
            mmproj, s.n_embd, 24000, MK_TTS_SAMPLES_PER_FRAME, (double)mbytes / (1024.0 * 1024.0));
  } else if (mmproj && s.arch == MK_ARCH_QWEN3TTS) {
    uint64_t mbytes = 0;
    int real = s.n_embd == 1024;
    if (mk_qwen3tts_proj_write(mmproj, s.n_embd, real, s.seed, &mbytes, err, sizeof(err)) != 0)
      goto fail;
    fprintf(stderr,
            "mkmodel: wrote %s: qwen3-tts projector 'qwen3tts_gen' + 'qwen3tts_spkenc' (%s widths) "
            "for n_embd %d, %d Hz, %d samples per frame, %.2f MiB\n",
            mmproj, real ? "real" : "tiny", s.n_embd, 24000, MK_Q3T_SAMPLES_PER_FRAME,
            (double)mbytes / (1024.0 * 1024.0));
  } else if (mmproj && (audio_proj || s.alm)) {
    /* an audio LLM preset's own projector, else Ultravox-style with stack factor 4 */
    uint64_t mbytes = 0;
    if (mk_aproj_write(mmproj, alm, stack, s.n_embd, s.seed, &mbytes, err, sizeof(err)) != 0)
      goto fail;
    fprintf(stderr,
            "mkmodel: wrote %s: '%s' audio projector for n_embd %d, %d Hz, %ld tokens for 1 s "
            "of audio (%ld for 30 s)%s, %.2f MiB\n",
            mmproj, mk_alm_name(alm), s.n_embd, MK_APROJ_RATE, mk_aproj_tokens(alm, stack, 16000),
            mk_aproj_tokens(alm, stack, 30L * MK_APROJ_RATE),
            mk_aproj_encodable(alm, stack) ? "" : " (the pinned mtmd cannot encode it)",
            (double)mbytes / (1024.0 * 1024.0));
  } else if (mmproj && mk_qwenvl_is(&s)) {
    uint64_t mbytes = 0;
    if (mk_qwenvl_proj_write(mmproj, &s, s.seed, &mbytes, err, sizeof(err)) != 0) goto fail;
    fprintf(stderr,
            "mkmodel: wrote %s: %s projector for n_embd %d, %dx%d merged patches -> %d tokens, "
            "%.2f MiB\n",
            mmproj, s.arch != MK_ARCH_QWEN2VL ? "qwen3vl_merger" : "qwen2.5vl_merger", s.n_embd,
            MK_QVL_VERIFY_GRID_X, MK_QVL_VERIFY_GRID_Y, MK_QVL_VERIFY_GRID_X * MK_QVL_VERIFY_GRID_Y,
            (double)mbytes / (1024.0 * 1024.0));
  } else if (mmproj) {
    uint64_t mbytes = 0;
    if (mk_mmproj_write(mmproj, s.n_embd, s.seed, &mbytes, err, sizeof(err)) != 0) goto fail;
    fprintf(stderr,
            "mkmodel: wrote %s: LLaVA-style projector 'mlp' for n_embd %d, %dx%d images, %d "
            "tokens per image, %.2f MiB\n",
            mmproj, s.n_embd, MK_MMPROJ_IMAGE_SIZE, MK_MMPROJ_IMAGE_SIZE, MK_MMPROJ_IMAGE_TOKENS,
            (double)mbytes / (1024.0 * 1024.0));
  }

  if (do_verify) {
    char summary[1024];
    if (mk_verify(out, s.pooling >= 0, mk_moe_is_hybrid(s.arch), threads, summary, sizeof(summary),
                  err, sizeof(err)) != 0)
      goto fail;
    fprintf(stderr, "mkmodel: verify ok (%.2fs): %s\n", sy_mono_s() - t2, summary);
    if (mmproj) {
      double t3 = sy_mono_s();
      int vr =
          s.arch == MK_ARCH_QWEN3TTS ? mk_qwen3tts_proj_verify(out, mmproj, threads, summary,
                                                               sizeof(summary), err, sizeof(err))
          : s.arch == MK_ARCH_POCKETTTS
              ? mk_ttsproj_verify(out, mmproj, threads, summary, sizeof(summary), err, sizeof(err))
          : audio_proj || s.alm
              ? mk_mmproj_audio_verify(out, mmproj, threads, mk_aproj_tokens(alm, stack, 16000),
                                       mk_aproj_encodable(alm, stack), summary, sizeof(summary),
                                       err, sizeof(err))
          : mk_qwenvl_is(&s)
              ? mk_qwenvl_proj_verify(out, mmproj, &s, threads, summary, sizeof(summary), err,
                                      sizeof(err))
              : mk_mmproj_verify(out, mmproj, threads, summary, sizeof(summary), err, sizeof(err));
      if (vr != 0) goto fail;
      fprintf(stderr, "mkmodel: mmproj verify ok (%.2fs): %s\n", sy_mono_s() - t3, summary);
    }
  }
  rc = 0;
  goto done;

fail:
  fprintf(stderr, "mkmodel: %s\n", err);
done:
  if (model) llama_model_free(model);
  if (meta) gguf_free(meta);
  if (vocab) gguf_free(vocab);
  free(tmpl);
  mk_fill_deinit(&fill);
  mk_pool_free();
  llama_backend_free();
  return rc;
}

/* run.c — `switchyard run MODEL [PROMPT]` (cli.h): chat with a model through the daemon's
 * POST /v1/chat/completions, streamed.
 *
 * With a PROMPT, or when stdin is not a terminal: one answer (to the prompt, or to what stdin
 * holds, or to both: stdin first), printed as it arrives, then exit. Otherwise an interactive
 * session in the manner of `ollama run`: ">>> " prompts, the answer streamed, the conversation
 * kept across turns; a line ending in "\" continues on the next line, text between """ and """
 * may span lines; /bye (or end of input) leaves, /clear forgets the conversation, /? lists these.
 * Ctrl-C stops an answer (or, at the prompt, says how to leave). Input is read with plain
 * getline on the terminal's own line editing: no history, no completion. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "argnum.h"
#include "cli/cli.h"

#define RUN_MAX_INPUT (16 << 20) /* a prompt (piped, or typed across lines) */
#define RUN_MAX_TOKENS (1 << 20)

static volatile int run_interrupted; /* set by SIGINT */

static void on_sigint(int sig) { run_interrupted = 1; }

/* one answer streaming in (on_line's state) */
typedef struct answer {
  sy_buf text;        /* the assistant's content so far */
  char error[512];    /* an error event in the stream */
  bool done;          /* [DONE] seen */
  bool ended_newline; /* the last byte printed was '\n' */
} answer;

static bool on_line(const char *line, size_t len, void *ud) {
  answer *a = ud;
  if (len < 6 || strncmp(line, "data: ", 6) != 0) return true; /* blank lines, comments */
  if (len - 6 == 6 && strncmp(line + 6, "[DONE]", 6) == 0) {
    a->done = true;
    return true;
  }
  json_t *ev = json_loadb(line + 6, len - 6, 0, NULL);
  const json_t *err = json_object_get(ev, "error");
  if (err) {
    const char *msg = json_is_string(err) ? json_string_value(err)
                                          : json_string_value(json_object_get(err, "message"));
    snprintf(a->error, sizeof a->error, "%s", msg ? msg : "the stream ended with an error");
  }
  const json_t *delta = json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta");
  const char *piece = json_string_value(json_object_get(delta, "content"));
  if (piece && *piece) {
    size_t n = strlen(piece);
    fwrite(piece, 1, n, stdout);
    fflush(stdout);
    sy_buf_append(&a->text, piece, n);
    a->ended_newline = piece[n - 1] == '\n';
  }
  json_decref(ev);
  return true;
}

typedef struct run_opts {
  const char *model;
  long max_tokens; /* 0: the model's default */
  long seed;       /* -1: none */
} run_opts;

/* Send messages (borrowed) and stream the answer to stdout: 0 with the assistant's content in
 * *reply (malloc'd; as far as it went when Ctrl-C stopped it), 1 on an error (said) or a Ctrl-C
 * before the answer began, -1 no daemon (said). */
static int ask(const cli_conn *c, const run_opts *o, json_t *messages, char **reply) {
  json_t *body = json_pack("{s:s, s:O, s:b}", "model", o->model, "messages", messages, "stream", 1);
  if (o->max_tokens > 0) json_object_set_new(body, "max_tokens", json_integer(o->max_tokens));
  if (o->seed >= 0) json_object_set_new(body, "seed", json_integer(o->seed));
  answer a = {.ended_newline = true, .text = {.limit = RUN_MAX_INPUT * 4}};
  cli_reply r;
  run_interrupted = 0;
  sigset_t intr, old;
  sigemptyset(&intr);
  sigaddset(&intr, SIGINT);
  sigprocmask(SIG_UNBLOCK, &intr, &old); /* Ctrl-C stops the answer (interactive: see read_line) */
  int rc = cli_stream(c, "/v1/chat/completions", body, on_line, &a, &run_interrupted, &r);
  sigprocmask(SIG_SETMASK, &old, NULL);
  json_decref(body);
  if (rc != 0) {
    sy_buf_free(&a.text);
    return -1;
  }
  if (r.status == 0 && run_interrupted) { /* Ctrl-C before the answer began (a load, a queue) */
    putchar('\n');
    rc = 1;
  } else if (r.status != 200) {
    rc = cli_fail(c, &r);
  } else {
    if (!a.ended_newline) putchar('\n');
    if (a.error[0]) {
      fprintf(stderr, "switchyard run: %s\n", a.error);
      rc = 1;
    } else if (!a.done && !run_interrupted) {
      fprintf(stderr, "switchyard run: the answer ended early\n");
      rc = 1;
    }
  }
  fflush(stdout);
  cli_reply_free(&r);
  if (rc == 0) {
    sy_buf_append(&a.text, "", 1);
    *reply = a.text.data ? strdup(a.text.data) : strdup("");
  }
  sy_buf_free(&a.text);
  return rc;
}

static json_t *message(const char *role, const char *content) {
  return json_pack("{s:s, s:s}", "role", role, "content", content);
}

static int one_shot(const cli_conn *c, const run_opts *o, const char *prompt) {
  sy_buf in = {.limit = RUN_MAX_INPUT};
  if (!isatty(0)) { /* piped input: the prompt's text, before the PROMPT argument */
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
      if (sy_buf_append(&in, buf, n) != 0) {
        fprintf(stderr, "switchyard run: the input is over %d MiB\n", RUN_MAX_INPUT >> 20);
        sy_buf_free(&in);
        return 1;
      }
  }
  if (prompt) sy_buf_printf(&in, "%s%s", in.len ? "\n\n" : "", prompt);
  sy_buf_append(&in, "", 1);
  if (!in.data || !in.data[strspn(in.data, " \t\r\n")]) {
    fprintf(stderr, "switchyard run: nothing to ask: no PROMPT and no input\n");
    sy_buf_free(&in);
    return 2;
  }
  json_t *msgs = json_array();
  json_array_append_new(msgs, message("user", in.data));
  sy_buf_free(&in);
  char *reply = NULL;
  int rc = ask(c, o, msgs, &reply);
  json_decref(msgs);
  free(reply);
  return rc == 0 ? 0 : 1;
}

/* getline with the prompt shown first; NULL at end of input. *interrupted set for Ctrl-C.
 * SIGINT is blocked outside the waits that it may cut short: here it is let through only inside
 * ppoll, atomically, so a Ctrl-C between the prompt and the wait is never lost. A terminal in
 * canonical mode hands over one line per read, so stdio holds nothing when a prompt is shown and
 * waiting on the descriptor is waiting for the next line. */
static char *read_line(const char *prompt, bool *interrupted) {
  fputs(prompt, stdout);
  fflush(stdout);
  *interrupted = false;
  sigset_t during;
  sigprocmask(SIG_SETMASK, NULL, &during);
  sigdelset(&during, SIGINT);
  run_interrupted = 0;
  struct pollfd pf = {.fd = 0, .events = POLLIN};
  if (ppoll(&pf, 1, NULL, &during) < 0) {
    *interrupted = errno == EINTR && run_interrupted;
    if (*interrupted) return NULL;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    clearerr(stdin);
    return NULL;
  }
  if (n && line[n - 1] == '\n') line[--n] = '\0';
  return line;
}

static bool ends_with(const char *s, const char *end) {
  size_t a = strlen(s), b = strlen(end);
  return a >= b && strcmp(s + a - b, end) == 0;
}

/* One message typed at ">>> " (continued lines joined): malloc'd, or NULL at end of input.
 * *interrupted: Ctrl-C at the prompt (NULL returned). */
static char *read_message(bool *interrupted) {
  char *line = read_line(">>> ", interrupted);
  if (!line) return NULL;
  sy_buf msg = {.limit = RUN_MAX_INPUT};
  if (strncmp(line, "\"\"\"", 3) == 0) { /* """ ... """ */
    const char *rest = line + 3;
    if (strlen(rest) >= 3 && ends_with(rest, "\"\"\"")) {
      sy_buf_append(&msg, rest, strlen(rest) - 3);
    } else {
      sy_buf_puts(&msg, rest);
      for (;;) {
        free(line);
        line = read_line("... ", interrupted);
        if (!line) break;
        sy_buf_puts(&msg, msg.len ? "\n" : "");
        if (ends_with(line, "\"\"\"")) {
          sy_buf_append(&msg, line, strlen(line) - 3);
          break;
        }
        sy_buf_puts(&msg, line);
      }
    }
  } else {
    while (line && ends_with(line, "\\")) { /* a backslash at the end: the message goes on */
      sy_buf_append(&msg, line, strlen(line) - 1);
      sy_buf_puts(&msg, "\n");
      free(line);
      line = read_line("... ", interrupted);
    }
    if (line) sy_buf_puts(&msg, line);
  }
  bool cut = line == NULL; /* input ended or Ctrl-C inside a continued message */
  free(line);
  if (cut) {
    sy_buf_free(&msg);
    return NULL;
  }
  sy_buf_append(&msg, "", 1);
  return msg.data;
}

static void help(void) {
  printf(
      "Available commands:\n"
      "  /clear   forget the conversation so far\n"
      "  /bye     leave (so does Ctrl-D)\n"
      "  /?       this help\n"
      "A line ending in \\ continues on the next one; \"\"\" starts and ends a message that\n"
      "spans lines. Ctrl-C stops an answer.\n");
}

static int interactive(const cli_conn *c, const run_opts *o) {
  /* the model must exist (and the daemon answer) before the first prompt */
  char *esc = cli_escape(o->model), path[1024];
  snprintf(path, sizeof path, "/v1/models/%s", esc ? esc : "");
  free(esc);
  cli_reply r;
  if (cli_request(c, "GET", path, NULL, 30, &r) != 0) return 1;
  if (r.status != 200) {
    int rc = cli_fail(c, &r);
    cli_reply_free(&r);
    return rc;
  }
  cli_reply_free(&r);
  struct sigaction sa = {.sa_handler = on_sigint};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigset_t intr;
  sigemptyset(&intr);
  sigaddset(&intr, SIGINT);
  sigprocmask(SIG_BLOCK, &intr, NULL); /* let through only where a wait may be cut (read_line) */
  json_t *history = json_array();
  int rc = 0;
  for (;;) {
    bool interrupted = false;
    char *msg = read_message(&interrupted);
    if (!msg && interrupted) {
      printf("\nUse Ctrl + d or /bye to exit.\n");
      continue;
    }
    if (!msg) { /* end of input */
      printf("\n");
      break;
    }
    const char *t = msg + strspn(msg, " \t");
    if (!*t) {
      free(msg);
      continue;
    }
    if (strcmp(t, "/bye") == 0 || strcmp(t, "/exit") == 0) {
      free(msg);
      break;
    }
    if (t[0] == '/' && !strchr(t, '\n')) {
      if (strcmp(t, "/clear") == 0) {
        json_array_clear(history);
        printf("Cleared the conversation.\n");
      } else if (strcmp(t, "/?") == 0 || strcmp(t, "/help") == 0) {
        help();
      } else {
        printf("Unknown command '%s'. Type /? for help\n", t);
      }
      free(msg);
      continue;
    }
    json_array_append_new(history, message("user", msg));
    free(msg);
    char *reply = NULL;
    int a = ask(c, o, history, &reply);
    if (a < 0) { /* the daemon went away */
      rc = 1;
      break;
    }
    if (a == 0) {
      json_array_append_new(history, message("assistant", reply));
      printf("\n");
    } else { /* an error: the question is dropped, the conversation goes on */
      json_array_remove(history, json_array_size(history) - 1);
    }
    free(reply);
  }
  json_decref(history);
  return rc;
}

int cli_run(int argc, char **argv) {
  static const char usage[] =
      "usage: switchyard run MODEL [PROMPT...] [--max-tokens N] "
      "[--seed N] [--host H] [--port P] [--api-key K]\n";
  enum { O_MAX = 256, O_SEED };
  static const struct option opts[] = {CLI_CONN_OPTIONS,
                                       {"max-tokens", required_argument, 0, O_MAX},
                                       {"seed", required_argument, 0, O_SEED},
                                       {0, 0, 0, 0}};
  cli_conn c;
  cli_conn_init(&c, "run");
  run_opts o = {.seed = -1};
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
    int t = cli_conn_option(&c, opt, optarg, usage);
    if (t == -2) return 0;
    if (t < 0) return 2;
    if (t > 0) continue;
    if (opt == O_MAX && sy_parse_long(optarg, 1, RUN_MAX_TOKENS, &o.max_tokens) == 0) continue;
    if (opt == O_SEED && sy_parse_long(optarg, 0, 0x7fffffffL, &o.seed) == 0) continue;
    if (opt == O_MAX)
      fprintf(stderr, "switchyard run: --max-tokens must be 1..%d, not '%s'\n", RUN_MAX_TOKENS,
              optarg);
    else if (opt == O_SEED)
      fprintf(stderr, "switchyard run: --seed must be 0..2147483647, not '%s'\n", optarg);
    else
      fputs(usage, stderr);
    return 2;
  }
  if (optind >= argc) {
    fputs(usage, stderr);
    return 2;
  }
  o.model = argv[optind++];
  if (cli_conn_resolve(&c) != 0) return 2;
  if (optind < argc || !isatty(0)) {
    sy_buf prompt = {0}; /* the words after MODEL, joined by spaces as a shell split them */
    for (int i = optind; i < argc; i++)
      sy_buf_printf(&prompt, "%s%s", i > optind ? " " : "", argv[i]);
    sy_buf_append(&prompt, "", 1);
    int rc = one_shot(&c, &o, optind < argc ? prompt.data : NULL);
    sy_buf_free(&prompt);
    return rc;
  }
  return interactive(&c, &o);
}

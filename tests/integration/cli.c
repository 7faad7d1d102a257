/* cli.c — the switchyard program's client verbs (docs/CLI.md) against the daemon under test:
 * list, show, load, stop, ps; run one-shot (a PROMPT argument, piped stdin) and interactive on a
 * pseudo-terminal (typed lines, continued lines, """ blocks, the conversation kept, /bye); API
 * keys (SWITCHYARD_API_KEY, --api-key, the hint without one); no daemon → a message that
 * says how to start one and a failing status; --help lists the verbs. Every wait is on output
 * (a pipe's end, a prompt on the terminal), bounded by poll's hang guard, never on time. */
#include "harness.h"

#define CLI_HANG_GUARD_MS 120000 /* a read that waits this long has hung: the test fails */

typedef struct cli_out {
  int status; /* exit status, 128 + signal, -1 not run */
  sy_buf out, err;
} cli_out;

static void cli_out_free(cli_out *o) {
  sy_buf_free(&o->out);
  sy_buf_free(&o->err);
}

/* SWITCHYARD_API_KEY for the programs cli_exec runs (unset when NULL) */
static const char *cli_key;

/* "127.0.0.1:PORT" of the daemon under test */
static const char *d_host(void) {
  static char h[64];
  snprintf(h, sizeof h, "127.0.0.1:%d", D.port);
  return h;
}

/* Run switchyard args (NULL-ended, at most 14) with SWITCHYARD_HOST=host (unset when NULL), input
 * on its stdin (then closed: an empty pipe when NULL): its status, stdout and stderr in o. */
static void cli_exec(const char *host, const char *input, const char *const *args, cli_out *o) {
  memset(o, 0, sizeof *o);
  o->status = -1;
  const char *argv[16] = {it_daemon_bin};
  for (size_t i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
  int in[2], out[2], err[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) return;
  pid_t pid = fork();
  if (pid == 0) {
    if (host)
      setenv("SWITCHYARD_HOST", host, 1);
    else
      unsetenv("SWITCHYARD_HOST");
    if (cli_key)
      setenv("SWITCHYARD_API_KEY", cli_key, 1);
    else
      unsetenv("SWITCHYARD_API_KEY");
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int k = 0; k < 2; k++) close(in[k]), close(out[k]), close(err[k]);
    execv(it_daemon_bin, (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  signal(SIGPIPE, SIG_IGN);
  if (input) {
    size_t n = strlen(input), done = 0;
    while (done < n) {
      ssize_t w = write(in[1], input + done, n - done);
      if (w <= 0) break;
      done += (size_t)w;
    }
  }
  close(in[1]);
  struct pollfd pf[2] = {{.fd = out[0], .events = POLLIN}, {.fd = err[0], .events = POLLIN}};
  sy_buf *dst[2] = {&o->out, &o->err};
  int open_fds = 2;
  while (open_fds > 0 && poll(pf, 2, CLI_HANG_GUARD_MS) > 0) {
    for (int k = 0; k < 2; k++) {
      if (pf[k].fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t n = read(pf[k].fd, buf, sizeof buf);
      if (n > 0) {
        sy_buf_append(dst[k], buf, (size_t)n);
      } else {
        close(pf[k].fd);
        pf[k].fd = -1;
        open_fds--;
      }
    }
  }
  if (open_fds > 0) kill(pid, SIGKILL); /* hung: the status says so */
  for (int k = 0; k < 2; k++)
    if (pf[k].fd >= 0) close(pf[k].fd);
  int st = 0;
  if (waitpid(pid, &st, 0) == pid) o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  sy_buf_append(&o->out, "", 1);
  sy_buf_append(&o->err, "", 1);
}

/* list, show, load, ps, stop: each a table or an entry, and the daemon's state follows. */
static void t_cli_models(void) {
  cli_out o;
  cli_exec(d_host(), NULL, (const char *const[]){"list", NULL}, &o);
  bool listed = strstr(o.out.data, "NAME") && strstr(o.out.data, "CAPABILITIES") &&
                strstr(o.out.data, "\nchat ") && strstr(o.out.data, "chat,completion") &&
                strstr(o.out.data, "\nembed ");
  int st = o.status;
  cli_out_free(&o);
  CHECK(st == 0 && listed, "switchyard list: exit %d, chat and embed listed", st);

  json_t *m = it_ps_model(&D, "busy");
  json_decref(m);
  CHECK(m == NULL, "busy is not loaded before the test");
  cli_exec(d_host(), NULL, (const char *const[]){"load", "busy", NULL}, &o);
  st = o.status;
  bool said = strstr(o.out.data, "busy loaded") != NULL;
  cli_out_free(&o);
  CHECK(st == 0 && said, "switchyard load busy: exit %d", st);
  m = it_ps_model(&D, "busy");
  bool loaded = m && it_str_is(it_jstr(m, "state"), "loaded");
  json_decref(m);
  CHECK(loaded, "after switchyard load, /api/ps lists busy as loaded");

  cli_exec(d_host(), NULL, (const char *const[]){"ps", NULL}, &o);
  st = o.status;
  bool ps = strstr(o.out.data, "\nbusy ") && strstr(o.out.data, "memory: ");
  cli_out_free(&o);
  CHECK(st == 0 && ps, "switchyard ps (SWITCHYARD_HOST) lists busy: exit %d", st);

  cli_exec(d_host(), NULL, (const char *const[]){"show", "busy", NULL}, &o);
  st = o.status;
  bool shown = strstr(o.out.data, "capabilities") && strstr(o.out.data, "chat, completion") &&
               strstr(o.out.data, "context") && strstr(o.out.data, "Memory") &&
               strstr(o.out.data, "Resident") && strstr(o.out.data, "pid");
  bool has_tmpl = strstr(o.out.data, "  Template\n") != NULL;
  cli_out_free(&o);
  CHECK(st == 0 && shown, "switchyard show busy: exit %d, entry and resident part", st);
  resp r;
  it_post_json("/api/show", json_pack("{s:s}", "model", "busy"), &r);
  const char *tv = json_string_value(json_object_get(r.json, "template"));
  char *tmpl = strdup(tv ? tv : "");
  it_resp_clear(&r);
  cli_exec(d_host(), NULL, (const char *const[]){"show", "busy", "--template", NULL}, &o);
  st = o.status;
  bool same = *tmpl && !strcmp(o.out.data, tmpl);
  CHECK(st == 0 && same && has_tmpl,
        "switchyard show --template: exit %d, the whole template as /api/show gives it (%zu "
        "bytes), a Template part in show: %d",
        st, strlen(tmpl), has_tmpl);
  free(tmpl);
  cli_exec(d_host(), NULL, (const char *const[]){"show", "chat-alias", NULL}, &o);
  st = o.status;
  shown = strstr(o.out.data, "name             chat\n") && strstr(o.out.data, "chat-alias");
  cli_out_free(&o);
  CHECK(st == 0 && shown, "switchyard show by an alias: exit %d, the model's entry", st);

  cli_exec(d_host(), NULL, (const char *const[]){"stop", "busy", NULL}, &o);
  st = o.status;
  said = strstr(o.out.data, "busy unloaded") != NULL;
  cli_out_free(&o);
  CHECK(st == 0 && said, "switchyard stop busy: exit %d", st);
  bool gone = false;
  for (int tries = 0; tries < 100000 && !gone; tries++) { /* bounded: until /api/ps drops it */
    m = it_ps_model(&D, "busy");
    gone = m == NULL;
    json_decref(m);
  }
  CHECK(gone, "after switchyard stop, /api/ps no longer lists busy");

  static const char *const verbs[] = {"show", "load", "stop"};
  for (size_t i = 0; i < 3; i++) {
    cli_exec(d_host(), NULL, (const char *const[]){verbs[i], "no-such-model", NULL}, &o);
    st = o.status;
    bool named = strstr(o.err.data, "no-such-model") && strstr(o.err.data, "does not exist");
    char said_err[256];
    snprintf(said_err, sizeof said_err, "%s", o.err.data);
    cli_out_free(&o);
    CHECK(st == 1 && named, "switchyard %s no-such-model: exit %d, stderr %s", verbs[i], st,
          said_err);
  }
}

/* run one-shot: a PROMPT argument, and piped input; both print an answer and exit 0, and the
 * same question (a deterministic model) gets the same answer either way. */
static void t_cli_run_oneshot(void) {
  cli_out a, b;
  cli_exec(d_host(), NULL,
           (const char *const[]){"run", "chat", "tell", "me", "more", "--max-tokens", "6", "--seed",
                                 "7", NULL},
           &a);
  cli_exec(d_host(), "tell me more",
           (const char *const[]){"run", "chat", "--max-tokens", "6", "--seed", "7", NULL}, &b);
  int sa = a.status, sb = b.status;
  bool nl = a.out.len > 1 && a.out.data[a.out.len - 2] == '\n';
  bool same = strcmp(a.out.data, b.out.data) == 0;
  char ea[256], eb[256], ta[256], tb[256];
  snprintf(ta, sizeof ta, "%s", a.out.data);
  snprintf(tb, sizeof tb, "%s", b.out.data);
  snprintf(ea, sizeof ea, "%s", a.err.data);
  snprintf(eb, sizeof eb, "%s", b.err.data);
  cli_out_free(&a);
  cli_out_free(&b);
  CHECK(sa == 0 && nl, "run with a prompt: exit %d, stderr %s", sa, ea);
  CHECK(sb == 0, "run with piped input: exit %d, stderr %s", sb, eb);
  CHECK(same, "the prompt as an argument and piped in got the same answer: '%s' / '%s'", ta, tb);

  cli_exec(d_host(), " \n", (const char *const[]){"run", "chat", NULL}, &a);
  sa = a.status;
  bool nothing = strstr(a.err.data, "nothing to ask") != NULL;
  cli_out_free(&a);
  CHECK(sa == 2 && nothing, "run with empty input and no prompt: exit %d", sa);

  cli_exec(d_host(), NULL, (const char *const[]){"run", "no-such-model", "hi", NULL}, &a);
  sa = a.status;
  bool named = strstr(a.err.data, "no-such-model") != NULL;
  cli_out_free(&a);
  CHECK(sa == 1 && named, "run of an unknown model: exit %d", sa);
}

/* ---- a pseudo-terminal ---- */

typedef struct pty_session {
  int fd; /* the master side */
  pid_t pid;
  sy_buf seen; /* everything the program wrote */
} pty_session;

static bool pty_start(pty_session *s, const char *const *args) {
  memset(s, 0, sizeof *s);
  s->fd = posix_openpt(O_RDWR | O_NOCTTY);
  if (s->fd < 0 || grantpt(s->fd) != 0 || unlockpt(s->fd) != 0) return false;
  const char *slave = ptsname(s->fd);
  if (!slave) return false;
  const char *argv[16] = {it_daemon_bin};
  for (size_t i = 0; args[i] && i < 14; i++) argv[i + 1] = args[i];
  s->pid = fork();
  if (s->pid == 0) {
    setsid();
    int t = open(slave, O_RDWR);
    if (t < 0) _exit(127);
    dup2(t, 0);
    dup2(t, 1);
    dup2(t, 2);
    if (t > 2) close(t);
    close(s->fd);
    setenv("SWITCHYARD_HOST", d_host(), 1);
    unsetenv("SWITCHYARD_API_KEY");
    execv(it_daemon_bin, (char *const *)argv);
    _exit(127);
  }
  return s->pid > 0;
}

/* Read the terminal until `marker` has appeared `count` times in all; false when the program
 * ended (or hung) first. */
static bool pty_expect(pty_session *s, const char *marker, int count) {
  for (int rounds = 0; rounds < 100000; rounds++) {
    int seen = 0;
    for (const char *p = s->seen.data; p && s->seen.len && (p = strstr(p, marker)); p++) seen++;
    if (seen >= count) return true;
    struct pollfd pf = {.fd = s->fd, .events = POLLIN};
    if (poll(&pf, 1, CLI_HANG_GUARD_MS) <= 0) return false;
    char buf[4096];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n <= 0) return false; /* EIO: the program's side closed */
    sy_buf_append(&s->seen, buf, (size_t)n);
    sy_buf_append(&s->seen, "", 1); /* kept NUL-terminated for strstr */
    s->seen.len--;
  }
  return false;
}

static void pty_type(pty_session *s, const char *text) {
  size_t n = strlen(text);
  if (write(s->fd, text, n) != (ssize_t)n) { /* the check that follows fails */
  }
}

/* Wait for the program's end, reading what it still writes: its exit status. */
static int pty_finish(pty_session *s) {
  while (pty_expect(s, "\x01never", 1)) {
  }
  int st = 0;
  pid_t got = waitpid(s->pid, &st, WNOHANG);
  if (got == 0) { /* its terminal is closed but it is still running: hung */
    kill(s->pid, SIGKILL);
    got = waitpid(s->pid, &st, 0);
  }
  close(s->fd);
  return got != s->pid ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The text between the n-th and the (n+1)-th ">>> " prompt (malloc'd). */
static char *between_prompts(const pty_session *s, int n) {
  const char *p = s->seen.data;
  for (int i = 0; i < n && p; i++) p = strstr(p, ">>> "), p = p ? p + 4 : NULL;
  const char *e = p ? strstr(p, ">>> ") : NULL;
  return p && e ? strndup(p, (size_t)(e - p)) : strdup("");
}

/* The answer in a turn's terminal text: what follows the echoed line `typed` (malloc'd), with the
 * terminal's "\r" and the trailing newlines and spaces taken out. */
static char *answer_after(const char *turn, const char *typed) {
  const char *p = strstr(turn, typed);
  p = p ? p + strlen(typed) : "";
  p += strspn(p, "\r\n");
  return strdup(p);
}

/* s without '\r', trailing spaces and newlines, in place */
static char *normalised(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++)
    if (*r != '\r') *w++ = *r;
  while (w > s && (w[-1] == '\n' || w[-1] == ' ')) w--;
  *w = '\0';
  return s;
}

/* The content of a chat answer (non-streamed) to messages (stolen), seed 7, 6 tokens (malloc'd;
 * "" when it failed). */
static char *api_answer(json_t *messages) {
  resp r;
  it_post_json("/v1/chat/completions",
               json_pack("{s:s, s:o, s:i, s:i}", "model", "chat", "messages", messages,
                         "max_tokens", 6, "seed", 7),
               &r);
  const char *c = r.status == 200 ? it_jstr(r.json, "choices.0.message.content") : NULL;
  char *out = strdup(c ? c : "");
  it_resp_clear(&r);
  return normalised(out);
}

/* interactive: a typed line gets a streamed answer and the prompt again; a line continued with
 * "\" and a """ block are one message each; the conversation is sent again each turn (the
 * second answer is the API's answer to both turns); /? helps; /bye exits 0. */
static void t_cli_run_terminal(void) {
  pty_session s;
  bool started =
      pty_start(&s, (const char *const[]){"run", "chat", "--max-tokens", "6", "--seed", "7", NULL});
  CHECK(started, "a pseudo-terminal and the program on it");
  bool p1 = pty_expect(&s, ">>> ", 1);
  if (p1) pty_type(&s, "tell me more\n");
  bool p2 = p1 && pty_expect(&s, ">>> ", 2);
  if (p2) pty_type(&s, "first line \\\n"); /* each line once its prompt shows, as typed */
  bool cont = p2 && pty_expect(&s, "... ", 1);
  if (cont) pty_type(&s, "second line\n");
  bool p3 = cont && pty_expect(&s, ">>> ", 3);
  if (p3) pty_type(&s, "\"\"\"block start\n");
  bool cont2 = p3 && pty_expect(&s, "... ", 2);
  if (cont2) pty_type(&s, "block end\"\"\"\n");
  bool p4 = cont2 && pty_expect(&s, ">>> ", 4);
  if (p4) pty_type(&s, "/?\n");
  bool p5 = p4 && pty_expect(&s, ">>> ", 5);
  if (p5) pty_type(&s, "/bye\n");
  char *t1 = between_prompts(&s, 1), *t2 = between_prompts(&s, 2), *help = between_prompts(&s, 4);
  char *a1 = normalised(answer_after(t1, "tell me more"));
  char *a2 = normalised(answer_after(t2, "second line"));
  bool helped = strstr(help, "/bye") != NULL;
  char said[600];
  snprintf(said, sizeof said, "%s", s.seen.data ? s.seen.data : "");
  free(t1);
  free(t2);
  free(help);
  int st = pty_finish(&s);
  sy_buf_free(&s.seen);
  /* the API's answers to the same turns: the first alone, the second after the first */
  json_t *turn1 = json_pack("[{s:s, s:s}]", "role", "user", "content", "tell me more");
  char *want1 = api_answer(json_deep_copy(turn1));
  json_array_append_new(turn1, json_pack("{s:s, s:s}", "role", "assistant", "content", want1));
  json_array_append_new(
      turn1, json_pack("{s:s, s:s}", "role", "user", "content", "first line \nsecond line"));
  char *want2 = api_answer(turn1);
  bool same1 = strcmp(a1, want1) == 0, same2 = strcmp(a2, want2) == 0;
  char got[512];
  snprintf(got, sizeof got, "'%s' / '%s' (the API: '%s' / '%s')", a1, a2, want1, want2);
  bool text = a1[0] != '\0';
  free(a1);
  free(a2);
  free(want1);
  free(want2);
  CHECK(p1 && p2, "a prompt, an answer, the prompt again; the terminal showed: %s", said);
  CHECK(text, "the answer streamed text to the terminal; it showed: %s", said);
  CHECK(cont && p3, "a line ending in \\ continues (\"... \") and is answered once: %s", said);
  CHECK(p4, "a \"\"\" block is one message: %s", said);
  CHECK(p5 && helped, "/? lists the commands: %s", said);
  CHECK(st == 0, "/bye: exit %d", st);
  CHECK(same1, "the first answer on the terminal is the API's: %s", got);
  CHECK(same2, "the second turn was sent with the first (the API's answer to both): %s", got);
}

/* interactive, the keys: Ctrl-C at the prompt says how to leave and prompts again; Ctrl-D (end
 * of input) leaves with status 0; /clear and an unknown command answer without asking the model. */
static void t_cli_run_keys(void) {
  pty_session s;
  bool started = pty_start(&s, (const char *const[]){"run", "chat", NULL});
  CHECK(started, "a pseudo-terminal and the program on it");
  bool p1 = pty_expect(&s, ">>> ", 1);
  if (p1) pty_type(&s, "\x03"); /* the terminal's VINTR: SIGINT to the program */
  bool told = p1 && pty_expect(&s, "Use Ctrl + d or /bye to exit.", 1);
  bool p2 = told && pty_expect(&s, ">>> ", 2);
  if (p2) pty_type(&s, "/clear\n");
  bool cleared = p2 && pty_expect(&s, "Cleared the conversation.", 1);
  bool p3 = cleared && pty_expect(&s, ">>> ", 3);
  if (p3) pty_type(&s, "/nope\n");
  bool unknown = p3 && pty_expect(&s, "Unknown command '/nope'", 1);
  bool p4 = unknown && pty_expect(&s, ">>> ", 4);
  if (p4) pty_type(&s, "\x04"); /* VEOF at the start of a line: end of input */
  char said[600];
  snprintf(said, sizeof said, "%s", s.seen.data ? s.seen.data : "");
  int st = pty_finish(&s);
  sy_buf_free(&s.seen);
  CHECK(p1 && told && p2, "Ctrl-C at the prompt: a hint and the prompt again: %s", said);
  CHECK(cleared && p3, "/clear: %s", said);
  CHECK(unknown && p4, "an unknown command: %s", said);
  CHECK(st == 0, "Ctrl-D: exit %d; the terminal showed: %s", st, said);
}

/* A daemon with api_keys: without a key a verb fails and says which variable to set; with
 * SWITCHYARD_API_KEY or --api-key it works, run included. */
static void keyed_body(void) {
  char host[64];
  snprintf(host, sizeof host, "127.0.0.1:%d", B.port);
  cli_out o;
  cli_key = NULL;
  cli_exec(host, NULL, (const char *const[]){"list", NULL}, &o);
  int st = o.status;
  bool hint = strstr(o.err.data, "SWITCHYARD_API_KEY") != NULL;
  cli_out_free(&o);
  CHECK(st == 1 && hint, "list with no key: exit %d, a hint naming SWITCHYARD_API_KEY", st);
  cli_key = "sk-cli";
  cli_exec(host, NULL, (const char *const[]){"list", NULL}, &o);
  st = o.status;
  bool listed = strstr(o.out.data, "\nchat ") != NULL;
  cli_out_free(&o);
  CHECK(st == 0 && listed, "list with SWITCHYARD_API_KEY: exit %d", st);
  cli_exec(host, NULL, (const char *const[]){"run", "chat", "hi", "--max-tokens", "2", NULL}, &o);
  st = o.status;
  cli_out_free(&o);
  CHECK(st == 0, "run with SWITCHYARD_API_KEY: exit %d", st);
  cli_key = NULL;
  cli_exec(host, NULL, (const char *const[]){"ps", "--api-key", "sk-cli", NULL}, &o);
  st = o.status;
  cli_out_free(&o);
  CHECK(st == 0, "ps --api-key: exit %d", st);
  cli_key = "sk-cli";
  cli_exec(host, NULL, (const char *const[]){"stop", "chat", NULL}, &o);
  st = o.status;
  bool told = strstr(o.err.data, "admin_keys") != NULL;
  cli_out_free(&o);
  CHECK(st == 1 && told, "stop (an admin action) with an API key: exit %d, the reason given", st);
  cli_key = "sk-cli-admin";
  cli_exec(host, NULL, (const char *const[]){"stop", "chat", NULL}, &o);
  st = o.status;
  cli_out_free(&o);
  CHECK(st == 0, "stop with an admin key: exit %d", st);
}

static void t_cli_api_key(void) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "api_keys: [sk-cli]\nadmin_keys: [sk-cli-admin]\nlog_level: warn\nmodels:\n"
           "  - {name: chat, file: %s/tiny-qwen2.gguf, context: 256, parallel: 1}\n",
           it_models_dir);
  it_with_own_daemon("cli-keys", yaml, keyed_body);
  cli_key = NULL;
}

/* no daemon: every verb says how to start one and fails; a bad SWITCHYARD_HOST is a usage error;
 * --help lists the verbs. */
static void t_cli_no_daemon(void) {
  static const char *const cmds[][3] = {{"list", NULL},         {"ps", NULL},
                                        {"show", "chat", NULL}, {"load", "chat", NULL},
                                        {"stop", "chat", NULL}, {"run", "chat", "hi"}};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
    cli_out o;
    const char *args[4] = {cmds[i][0], cmds[i][1], cmds[i][2], NULL};
    cli_exec("127.0.0.1:1", NULL, args, &o);
    int st = o.status;
    bool told = strstr(o.err.data, "no Switchyard daemon answers at http://127.0.0.1:1") &&
                strstr(o.err.data, "switchyard serve");
    char said[512];
    snprintf(said, sizeof said, "%s", o.err.data);
    cli_out_free(&o);
    CHECK(st == 1 && told, "switchyard %s with no daemon: exit %d, stderr %s", cmds[i][0], st,
          said);
  }
  cli_out o;
  cli_exec("http://[::1", NULL, (const char *const[]){"list", NULL}, &o);
  int st = o.status;
  bool named = strstr(o.err.data, "SWITCHYARD_HOST") != NULL;
  cli_out_free(&o);
  CHECK(st == 2 && named, "a malformed SWITCHYARD_HOST: exit %d", st);
  cli_exec(NULL, NULL, (const char *const[]){"no-such-verb", NULL}, &o);
  st = o.status;
  cli_out_free(&o);
  CHECK(st == 2, "an unknown verb: exit %d", st);
  cli_exec(NULL, NULL, (const char *const[]){"--help", NULL}, &o);
  st = o.status;
  bool lists = strstr(o.out.data, "run MODEL") && strstr(o.out.data, "list") &&
               strstr(o.out.data, "show MODEL") && strstr(o.out.data, "load MODEL") &&
               strstr(o.out.data, "stop MODEL") && strstr(o.out.data, "serve");
  cli_out_free(&o);
  CHECK(st == 0 && lists, "--help lists the verbs: exit %d", st);
  /* serve is the daemon's command line: its own options, its own errors (a config not there) */
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no-such-config.yaml", it_tmpdir);
  cli_exec(NULL, NULL, (const char *const[]){"serve", "--check", "--config", missing, NULL}, &o);
  st = o.status;
  bool daemon_said = strstr(o.err.data, "no-such-config.yaml") != NULL;
  cli_out_free(&o);
  CHECK(st == 1 && daemon_said, "serve --check --config MISSING: the daemon's error, exit %d", st);
  cli_exec(NULL, NULL, (const char *const[]){"run", "--help", NULL}, &o);
  st = o.status;
  bool usage = strstr(o.out.data, "usage: switchyard run MODEL") != NULL;
  cli_out_free(&o);
  CHECK(st == 0 && usage, "run --help: its usage on stdout, exit %d", st);
}

static const it_test tests[] = {
    {"cli_models", t_cli_models, false},
    {"cli_run_oneshot", t_cli_run_oneshot, false},
    {"cli_run_terminal", t_cli_run_terminal, false},
    {"cli_run_keys", t_cli_run_keys, false},
    {"cli_api_key", t_cli_api_key, false},
    {"cli_no_daemon", t_cli_no_daemon, false},
};
const itest_table itest_cli = {"cli", tests, sizeof tests / sizeof *tests};

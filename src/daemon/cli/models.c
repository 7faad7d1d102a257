/* models.c — the CLI verbs about the matrix's models (cli.h): `switchyard list` (GET /v1/models
 * as a table), `show MODEL` (GET /v1/models/MODEL, its /api/ps entry when resident, its chat
 * template from POST /api/show; `--template`: the template alone), `load
 * MODEL` (POST /api/load) and `stop MODEL` (POST /api/unload). Clients only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The verb's options (CLI_CONN_OPTIONS, and --template when template is not NULL: show's) and
 * want_model positional MODEL: 0 with c resolved and *model set (NULL for none), -1 after --help
 * (exit 0), or 2 (a usage error, said). */
static int parse(cli_conn *c, const char *verb, int argc, char **argv, bool want_model,
                 const char **model, bool *template) {
  static const struct option opts[] = {CLI_CONN_OPTIONS, {0, 0, 0, 0}};
  static const struct option show_opts[] = {
      CLI_CONN_OPTIONS, {"template", no_argument, 0, 'T'}, {0, 0, 0, 0}};
  char usage[256];
  snprintf(usage, sizeof usage, "usage: switchyard %s%s%s [--host H] [--port P] [--api-key K]\n",
           verb, want_model ? " MODEL" : "", template ? " [--template]" : "");
  cli_conn_init(c, verb);
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "p:h", template ? show_opts : opts, NULL)) != -1) {
    if (o == 'T' && template) {
      *template = true;
      continue;
    }
    int t = cli_conn_option(c, o, optarg, usage);
    if (t == -2) return -1;
    if (t < 0) return 2;
    if (t == 0) goto bad;
  }
  if (argc - optind != (want_model ? 1 : 0)) goto bad;
  *model = want_model ? argv[optind] : NULL;
  return cli_conn_resolve(c) == 0 ? 0 : 2;
bad:
  fputs(usage, stderr);
  return 2;
}

/* "chat, vision" from a capabilities array (or the router/pipeline it is) */
static void caps_str(const json_t *m, char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  const json_t *caps = json_object_get(m, "capabilities"), *v;
  size_t i;
  json_array_foreach(caps, i, v) {
    int k = snprintf(out + used, len - used, "%s%s", used ? "," : "", json_string_value(v));
    if (k < 0 || (size_t)k >= len - used) break;
    used += (size_t)k;
  }
  if (json_object_get(m, "routes")) snprintf(out, len, "router");
  if (!out[0]) snprintf(out, len, "-");
}

static long long mem_of(const json_t *m, const char *which) {
  return (long long)json_integer_value(json_object_get(json_object_get(m, "memory"), which));
}

int cli_list(int argc, char **argv) {
  cli_conn c;
  const char *none;
  int rc = parse(&c, "list", argc, argv, false, &none, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  cli_reply r;
  if (cli_request(&c, "GET", "/v1/models", NULL, 30, &r) != 0) return 1;
  if (r.status != 200 || !json_is_array(json_object_get(r.json, "data"))) {
    rc = cli_fail(&c, &r);
    cli_reply_free(&r);
    return rc;
  }
  printf("%-32s %-10s %-36s %s\n", "NAME", "SIZE", "CAPABILITIES", "STATE");
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(r.json, "data"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *st = json_string_value(json_object_get(m, "status"));
    char size[32], caps[256];
    long long meas = mem_of(m, "measured"), est = mem_of(m, "estimated");
    cli_human_size(meas > 0 ? meas : est, size, sizeof size);
    caps_str(m, caps, sizeof caps);
    printf("%-32s %-10s %-36s %s\n", id ? id : "?", size, caps, st ? st : "-");
  }
  cli_reply_free(&r);
  return 0;
}

/* Print key: value for a string, number or a list/object of them, indented. */
static void show_field(const char *label, const json_t *v) {
  if (!v || json_is_null(v)) return;
  printf("    %-16s ", label);
  if (json_is_string(v)) {
    printf("%s\n", json_string_value(v));
  } else if (json_is_integer(v)) {
    printf("%lld\n", (long long)json_integer_value(v));
  } else if (json_is_array(v)) {
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) printf("%s%s", i ? ", " : "", json_string_value(e));
    printf("%s\n", json_array_size(v) ? "" : "-");
  } else if (json_is_object(v)) {
    const char *k;
    const json_t *e;
    bool first = true;
    json_object_foreach((json_t *)v, k, e) {
      printf("%s%s=%s", first ? "" : ", ", k, json_is_string(e) ? json_string_value(e) : "-");
      first = false;
    }
    printf("\n");
  } else {
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%s\n", t ? t : "?");
    free(t);
  }
}

/* the model's /api/ps entry (a new reference), or NULL */
static json_t *ps_entry(const cli_conn *c, const char *name) {
  cli_reply r;
  if (cli_request(c, "GET", "/api/ps", NULL, 30, &r) != 0) return NULL;
  json_t *found = NULL, *m;
  size_t i;
  json_array_foreach(json_object_get(r.json, "models"), i, m) {
    const char *n = json_string_value(json_object_get(m, "name"));
    if (n && strcmp(n, name) == 0) found = json_incref(m);
  }
  cli_reply_free(&r);
  return found;
}

/* The chat template /api/show gives for model (malloc'd), or NULL (none, or no answer). */
static char *template_of(const cli_conn *c, const char *model) {
  json_t *body = json_pack("{s:s}", "model", model);
  cli_reply r;
  char *t = NULL;
  if (body && cli_request(c, "POST", "/api/show", body, 30, &r) == 0) {
    const char *s = json_string_value(json_object_get(r.json, "template"));
    if (r.status == 200 && s && *s) t = strdup(s);
    cli_reply_free(&r);
  }
  json_decref(body);
  return t;
}

/* The template's first SHOW_TEMPLATE_LINES lines, indented, and how many more there are. */
#define SHOW_TEMPLATE_LINES 6
static void show_template(const char *t, const char *model) {
  printf("  Template\n");
  int line = 0;
  const char *s = t;
  while (*s && line < SHOW_TEMPLATE_LINES) {
    const char *nl = strchr(s, '\n');
    int n = nl ? (int)(nl - s) : (int)strlen(s);
    printf("    %.*s\n", n, s);
    line++;
    s += n + (nl ? 1 : 0);
  }
  int more = 0;
  for (const char *q = s; *q; q++) more += *q == '\n' || q[1] == '\0';
  if (more) printf("    ... %d more lines: switchyard show %s --template\n", more, model);
}

int cli_show(int argc, char **argv) {
  cli_conn c;
  const char *model;
  bool only_template = false;
  int rc = parse(&c, "show", argc, argv, true, &model, &only_template);
  if (rc) return rc < 0 ? 0 : rc;
  char *esc = cli_escape(model), path[1024];
  snprintf(path, sizeof path, "/v1/models/%s", esc ? esc : "");
  free(esc);
  cli_reply r;
  if (cli_request(&c, "GET", path, NULL, 30, &r) != 0) return 1;
  if (r.status != 200 || !json_is_object(r.json)) {
    rc = cli_fail(&c, &r);
    cli_reply_free(&r);
    return rc;
  }
  const json_t *m = r.json;
  const char *id = json_string_value(json_object_get(m, "id"));
  char *tmpl = id && json_object_get(m, "capabilities") ? template_of(&c, id) : NULL;
  if (only_template) { /* the whole template, as it is, for a pipe or a file */
    if (tmpl) fputs(tmpl, stdout);
    free(tmpl);
    cli_reply_free(&r);
    return 0;
  }
  printf("  Model\n");
  show_field("name", json_object_get(m, "id"));
  show_field("aliases", json_object_get(m, "aliases"));
  show_field("capabilities", json_object_get(m, "capabilities"));
  show_field("context", json_object_get(m, "context_length"));
  show_field("state", json_object_get(m, "status"));
  show_field("routes", json_object_get(m, "routes"));
  show_field("default route", json_object_get(m, "default"));
  show_field("classifier", json_object_get(m, "classifier"));
  show_field("pipeline", json_object_get(m, "pipeline"));
  if (json_object_get(m, "memory")) {
    char est[32], meas[32];
    cli_human_size(mem_of(m, "estimated"), est, sizeof est);
    cli_human_size(mem_of(m, "measured"), meas, sizeof meas);
    printf("  Memory\n    %-16s %s\n    %-16s %s\n", "estimated", est, "measured", meas);
  }
  json_t *ps = id ? ps_entry(&c, id) : NULL;
  if (ps) {
    char size[32];
    cli_human_size((long long)json_integer_value(json_object_get(ps, "size")), size, sizeof size);
    printf("  Resident\n    %-16s %s\n", "size", size);
    show_field("pid", json_object_get(ps, "pid"));
    show_field("parallel", json_object_get(ps, "parallel"));
    show_field("expires in (s)", json_object_get(ps, "expires_in_s"));
    show_field("in flight", json_object_get(ps, "inflight"));
    show_field("queued", json_object_get(ps, "queued"));
    json_decref(ps);
  }
  if (tmpl) show_template(tmpl, id);
  free(tmpl);
  cli_reply_free(&r);
  return 0;
}

/* load and stop: POST {"model"} to path; done says what happened. */
static int admin(const char *verb, const char *method, const char *path, const char *done, int argc,
                 char **argv) {
  cli_conn c;
  const char *model;
  int rc = parse(&c, verb, argc, argv, true, &model, NULL);
  if (rc) return rc < 0 ? 0 : rc;
  json_t *body = json_pack("{s:s}", "model", model);
  cli_reply r;
  rc = cli_request(&c, method, path, body, 0, &r);
  json_decref(body);
  if (rc != 0) return 1;
  if (r.status != 200) {
    rc = cli_fail(&c, &r);
    cli_reply_free(&r);
    return rc;
  }
  const char *name = json_string_value(json_object_get(r.json, "model"));
  printf("%s %s\n", name ? name : model, done);
  cli_reply_free(&r);
  return 0;
}

int cli_load(int argc, char **argv) {
  return admin("load", "POST", "/api/load", "loaded", argc, argv);
}

int cli_stop(int argc, char **argv) {
  return admin("stop", "POST", "/api/unload", "unloaded", argc, argv);
}

/* the daemon deletes only a model found in its models folder (a pulled one), never a configured
 * one (DELETE /api/delete) */
int cli_rm(int argc, char **argv) {
  return admin("rm", "DELETE", "/api/delete", "deleted", argc, argv);
}

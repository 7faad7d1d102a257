/* pull_ref.c — the pure part of `switchyard pull`: references, a repo's file list, a registry's
 * manifest, and the checks on every string a server sends (see pull_ref.h). Must never let a
 * string from a server become a path without pull_safe_name, never accept a digest that is not
 * exactly sha256:<64 lowercase hex> (Ollama's CVE-2024-37032 was a traversal through a manifest's
 * digest), and never read past the bounds in pull_ref.h. */
#include "pull/pull_ref.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* A hub org, repo or registry name: [A-Za-z0-9._-], not starting with '.' or '-', at most cap-1
 * bytes, no "..". */
static bool ident_ok(const char *s, size_t n, size_t cap) {
  if (n == 0 || n >= cap || s[0] == '.' || s[0] == '-') return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '.' && c != '-' && c != '_') return false;
    if (c == '.' && i + 1 < n && s[i + 1] == '.') return false;
  }
  return true;
}

static bool tag_ok(const char *s, size_t n, size_t cap) {
  if (n == 0 || n >= cap) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  }
  return true;
}

static void copy(char *dst, const char *s, size_t n) {
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* A path inside a repo: components of [A-Za-z0-9._+-], none empty, ".", ".." or starting with
 * '.'. */
static bool repo_path_ok(const char *s, size_t n) {
  if (n == 0 || n > PULL_MAX_PATH) return false;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == '/') {
      if (i == start || s[start] == '.') return false;
      start = i + 1;
      continue;
    }
    unsigned char c = (unsigned char)s[i];
    if (!isalnum(c) && c != '.' && c != '-' && c != '_' && c != '+') return false;
  }
  return true;
}

int pull_ref_parse(const char *s, pull_ref *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || !*s) return fail(err, errlen, "empty model reference");
  size_t total = strnlen(s, 1024);
  if (total >= 1024) return fail(err, errlen, "model reference too long");
  static const char *hubs[] = {"hf.co/", "huggingface.co/", "https://hf.co/",
                               "https://huggingface.co/"};
  for (size_t h = 0; h < sizeof hubs / sizeof hubs[0]; h++) {
    size_t hl = strlen(hubs[h]);
    if (strncasecmp(s, hubs[h], hl) != 0) continue;
    const char *p = s + hl, *slash = strchr(p, '/');
    if (!slash || !ident_ok(p, (size_t)(slash - p), sizeof out->org))
      return fail(err, errlen, "'%.200s': expected hf.co/<org>/<repo>[:<quant>]", s);
    copy(out->org, p, (size_t)(slash - p));
    const char *r = slash + 1, *rest = r + strcspn(r, "/:");
    if (!ident_ok(r, (size_t)(rest - r), sizeof out->repo))
      return fail(err, errlen, "'%.200s': bad repository name", s);
    copy(out->repo, r, (size_t)(rest - r));
    if (*rest == '/') {
      size_t fl = strlen(rest + 1);
      if (!repo_path_ok(rest + 1, fl) || fl < 6 || strcasecmp(rest + 1 + fl - 5, ".gguf") != 0)
        return fail(err, errlen, "'%.200s': bad file path (a .gguf file of the repo)", s);
      out->kind = PULL_HF_FILE;
      copy(out->file, rest + 1, fl);
      return 0;
    }
    out->kind = PULL_HF_QUANT;
    if (*rest == ':') {
      size_t tl = strlen(rest + 1);
      if (!tag_ok(rest + 1, tl, sizeof out->tag))
        return fail(err, errlen, "'%.200s': bad quantisation tag", s);
      copy(out->tag, rest + 1, tl);
      if (!strcasecmp(out->tag, "latest")) strcpy(out->tag, "Q4_K_M");
    } else {
      strcpy(out->tag, "Q4_K_M");
    }
    return 0;
  }
  /* registry: [namespace/]name[:tag] */
  out->kind = PULL_REGISTRY;
  const char *slash = strchr(s, '/'), *name = s;
  if (slash) {
    if (!ident_ok(s, (size_t)(slash - s), sizeof out->org) || strchr(slash + 1, '/'))
      return fail(err, errlen, "'%.200s': expected [<namespace>/]<name>[:<tag>]", s);
    copy(out->org, s, (size_t)(slash - s));
    name = slash + 1;
  } else {
    strcpy(out->org, "library");
  }
  const char *colon = strchr(name, ':');
  size_t nl = colon ? (size_t)(colon - name) : strlen(name);
  if (!ident_ok(name, nl, sizeof out->repo))
    return fail(err, errlen, "'%.200s': bad model name", s);
  copy(out->repo, name, nl);
  if (colon) {
    size_t tl = strlen(colon + 1);
    if (!tag_ok(colon + 1, tl, sizeof out->tag)) return fail(err, errlen, "'%.200s': bad tag", s);
    copy(out->tag, colon + 1, tl);
  } else {
    strcpy(out->tag, "latest");
  }
  return 0;
}

bool pull_hex64_ok(const char *s, size_t len) {
  if (!s || len != 64) return false;
  for (size_t i = 0; i < 64; i++)
    if (!isxdigit((unsigned char)s[i])) return false;
  return true;
}

bool pull_digest_ok(const char *s) {
  if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71) return false;
  for (size_t i = 7; i < 71; i++)
    if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return false;
  return true;
}

int pull_safe_name(const char *path, char *out, size_t cap) {
  if (!path || !cap) return -1;
  size_t n = strnlen(path, PULL_MAX_PATH + 1);
  if (n == 0 || n > PULL_MAX_PATH || strchr(path, '\\')) return -1;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) return -1;
  /* every component: not empty, not "." or ".." */
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && path[i] != '/') continue;
    size_t cl = i - start;
    if (cl == 0 || (cl == 1 && path[start] == '.') ||
        (cl == 2 && path[start] == '.' && path[start + 1] == '.'))
      return -1;
    start = i + 1;
  }
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t bl = strlen(base);
  if (bl > PULL_MAX_NAME || bl + 1 > cap || bl < 6 || base[0] == '.' ||
      strcasecmp(base + bl - 5, ".gguf") != 0)
    return -1;
  for (size_t i = 0; i < bl; i++) {
    unsigned char c = (unsigned char)base[i];
    out[i] = isalnum(c) || c == '.' || c == '-' || c == '_' || c == '+' ? (char)c : '_';
  }
  out[bl] = '\0';
  return 0;
}

bool pull_split_of(const char *name, int *index, int *count, size_t *stem_len) {
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  size_t n = strlen(base);
  static const char pat[] = "-99999-of-99999.gguf";
  size_t k = sizeof pat - 1;
  if (n <= k) return false;
  const char *t = base + n - k;
  for (size_t i = 0; i < k; i++) {
    if (pat[i] == '9' ? !isdigit((unsigned char)t[i]) : tolower((unsigned char)t[i]) != pat[i])
      return false;
  }
  int a = 0, b = 0;
  for (int i = 1; i <= 5; i++) a = a * 10 + (t[i] - '0');
  for (int i = 10; i <= 14; i++) b = b * 10 + (t[i] - '0');
  if (a < 1 || b < 1 || a > b) return false;
  if (index) *index = a;
  if (count) *count = b;
  if (stem_len) *stem_len = n - k;
  return true;
}

bool pull_is_mmproj(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (const char *p = base; *p; p++)
    if (!strncasecmp(p, "mmproj", 6)) return true;
  return false;
}

static bool gguf_name(const char *p) {
  size_t n = strlen(p);
  return n > 5 && strcasecmp(p + n - 5, ".gguf") == 0;
}

int pull_hf_list_parse(const char *body, size_t len, pull_file *files, size_t max, size_t *n,
                       char *err, size_t errlen) {
  *n = 0;
  if (len > PULL_MAX_LIST) return fail(err, errlen, "the hub's file list is too large");
  json_error_t je;
  json_t *a = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!json_is_array(a)) {
    json_decref(a);
    return fail(err, errlen, "the hub's file list is not a JSON array");
  }
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e) {
    if (i >= PULL_MAX_FILES || *n >= max) break;
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *path = json_string_value(json_object_get(e, "path"));
    if (!type || strcmp(type, "file") != 0 || !path || !gguf_name(path) ||
        !repo_path_ok(path, strlen(path)))
      continue;
    json_t *lfs = json_object_get(e, "lfs"), *sz = json_object_get(e, "size");
    if (json_is_object(lfs) && json_is_integer(json_object_get(lfs, "size")))
      sz = json_object_get(lfs, "size");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 ||
        json_integer_value(sz) > PULL_MAX_FILE_BYTES)
      continue;
    pull_file *f = &files[*n];
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->size = (long long)json_integer_value(sz);
    f->mmproj = pull_is_mmproj(path);
    const char *oid = json_string_value(json_object_get(lfs, "oid"));
    if (oid) {
      if (!pull_hex64_ok(oid, strlen(oid))) continue;
      for (int k = 0; k < 64; k++) f->sha256[k] = (char)tolower((unsigned char)oid[k]);
      f->sha256[64] = '\0';
    }
    (*n)++;
  }
  json_decref(a);
  return 0;
}

/* Whether name carries tag as a whole token: bounded by a non-alphanumeric byte (or the ends)
 * on both sides, case-insensitive. "Q4_K" is not in "Q4_K_M". */
static bool has_tag(const char *name, const char *tag) {
  size_t tl = strlen(tag);
  for (const char *p = name; *p; p++) {
    if (strncasecmp(p, tag, tl) != 0) continue;
    bool left = p == name || !isalnum((unsigned char)p[-1]);
    char r = p[tl];
    bool right = r == '\0' || (!isalnum((unsigned char)r) && r != '_');
    if (left && right) return true;
  }
  return false;
}

int pull_hf_pick(const pull_file *files, size_t n, const char *quant, size_t *pick, char *err,
                 size_t errlen) {
  if (n > PULL_MAX_FILES) n = PULL_MAX_FILES;
  size_t k = 0, first = (size_t)-1;
  int count = 0;
  size_t stem = 0;
  for (size_t i = 0; i < n; i++) {
    if (files[i].mmproj || !has_tag(files[i].path, quant)) continue;
    int idx, cnt;
    size_t sl;
    bool split = pull_split_of(files[i].path, &idx, &cnt, &sl);
    if (split && idx != 1) continue;
    if (first != (size_t)-1)
      return fail(err, errlen, "more than one file matches '%s' (%s, %s): name the file", quant,
                  files[first].path, files[i].path);
    first = i;
    count = split ? cnt : 0;
    stem = split ? (size_t)(strlen(files[i].path) - strlen("-00001-of-00001.gguf")) : 0;
  }
  if (first == (size_t)-1) return fail(err, errlen, "no .gguf file for the tag '%s'", quant);
  if (count > PULL_MAX_PICK - 1)
    return fail(err, errlen, "%s: too many parts (%d)", files[first].path, count);
  pick[k++] = first;
  for (int part = 2; part <= count; part++) {
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
      int idx, cnt;
      size_t sl;
      if (strncmp(files[i].path, files[first].path, stem) != 0 ||
          strlen(files[i].path) != strlen(files[first].path) ||
          !pull_split_of(files[i].path, &idx, &cnt, &sl) || idx != part || cnt != count)
        continue;
      pick[k++] = i;
      found = true;
    }
    if (!found)
      return fail(err, errlen, "%s: part %d of %d is missing from the repo", files[first].path,
                  part, count);
  }
  size_t mm = (size_t)-1;
  for (size_t i = 0; i < n; i++) {
    if (!files[i].mmproj) continue;
    if (mm == (size_t)-1 || (has_tag(files[i].path, "f16") && !has_tag(files[mm].path, "f16")))
      mm = i;
  }
  if (mm != (size_t)-1) pick[k++] = mm;
  return (int)k;
}

int pull_manifest_parse(const char *body, size_t len, pull_file files[2], size_t *n, char *err,
                        size_t errlen) {
  *n = 0;
  if (len > PULL_MAX_LIST) return fail(err, errlen, "the manifest is too large");
  json_error_t je;
  json_t *m = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  json_t *layers = json_object_get(m, "layers");
  if (!json_is_array(layers)) {
    json_decref(m);
    return fail(err, errlen, "the manifest has no layers");
  }
  memset(files, 0, 2 * sizeof *files);
  bool have[2] = {false, false};
  size_t i;
  json_t *l;
  int rc = 0;
  json_array_foreach(layers, i, l) {
    if (i >= 256) break;
    const char *mt = json_string_value(json_object_get(l, "mediaType"));
    int slot = !mt                                                     ? -1
               : !strcmp(mt, "application/vnd.ollama.image.model")     ? 0
               : !strcmp(mt, "application/vnd.ollama.image.projector") ? 1
                                                                       : -1;
    if (slot < 0) continue;
    const char *dg = json_string_value(json_object_get(l, "digest"));
    json_t *sz = json_object_get(l, "size");
    if (!pull_digest_ok(dg)) {
      rc = fail(err, errlen, "the manifest has a malformed digest");
      break;
    }
    if (!json_is_integer(sz) || json_integer_value(sz) < 0 ||
        json_integer_value(sz) > PULL_MAX_FILE_BYTES) {
      rc = fail(err, errlen, "the manifest has a bad layer size");
      break;
    }
    if (have[slot]) {
      rc = fail(err, errlen, "the manifest has more than one %s layer",
                slot ? "projector" : "model");
      break;
    }
    have[slot] = true;
    snprintf(files[slot].path, sizeof files[slot].path, "%s", dg);
    memcpy(files[slot].sha256, dg + 7, 64);
    files[slot].sha256[64] = '\0';
    files[slot].size = (long long)json_integer_value(sz);
    files[slot].mmproj = slot == 1;
  }
  json_decref(m);
  if (rc) return rc;
  if (!have[0]) return fail(err, errlen, "the manifest has no model layer");
  *n = have[1] ? 2 : 1;
  return 0;
}

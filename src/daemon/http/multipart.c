/* multipart.c — see multipart.h. Every scan is bounded by the body's length; nothing reads past
 * it, nothing allocates. */
#include "http/multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

/* Copy [s, s+n) into out (cap bytes with the NUL). false when it does not fit. */
static bool copy_str(char *out, size_t cap, const char *s, size_t n) {
  if (n >= cap) return false;
  memcpy(out, s, n);
  out[n] = '\0';
  return true;
}

/* One parameter value at *pp (up to end): "quoted" (backslash escapes) or a token up to ';'.
 * Written into out (cut at cap). Advances *pp. false on an unterminated quote. */
static bool param_value(const char **pp, const char *end, char *out, size_t cap, size_t *out_len) {
  const char *p = *pp;
  size_t k = 0;
  bool ok = true;
  if (p < end && *p == '"') {
    p++;
    while (p < end && *p != '"') {
      if (*p == '\\' && p + 1 < end) p++;
      if (k + 1 < cap) out[k] = *p;
      k++;
      p++;
    }
    if (p < end)
      p++; /* the closing quote */
    else
      ok = false;
  } else {
    const char *s = p;
    while (p < end && *p != ';') p++;
    const char *e = p;
    while (e > s && is_ws(e[-1])) e--;
    for (const char *q = s; q < e; q++, k++)
      if (k + 1 < cap) out[k] = *q;
  }
  if (cap) out[k < cap ? k : cap - 1] = '\0';
  *out_len = k;
  *pp = p;
  return ok;
}

/* The next parameter's key at *pp (up to end), past any ';' and white space, into *key and
 * *key_len (trailing white space cut). true when an '=' follows: *pp is then at the value (past
 * the '=' and white space); false leaves *pp at the ';' or the end, for the caller to skip it. */
static bool param_key(const char **pp, const char *end, const char **key, size_t *key_len) {
  const char *p = *pp;
  while (p < end && (is_ws(*p) || *p == ';')) p++;
  const char *k = p;
  while (p < end && *p != '=' && *p != ';') p++;
  const char *ke = p;
  while (ke > k && is_ws(ke[-1])) ke--;
  *key = k;
  *key_len = (size_t)(ke - k);
  if (p >= end || *p != '=') {
    *pp = p;
    return false;
  }
  p++;
  while (p < end && is_ws(*p)) p++;
  *pp = p;
  return true;
}

int mp_boundary(const char *ct, char *out, size_t cap) {
  if (!ct || cap == 0) return -1;
  while (is_ws(*ct)) ct++;
  static const char type[] = "multipart/form-data";
  if (strncasecmp(ct, type, sizeof type - 1) != 0) return -1;
  const char *p = ct + sizeof type - 1, *end = p + strlen(p);
  if (*p && *p != ';' && !is_ws(*p)) return -1;
  bool found = false;
  while (p < end) {
    const char *k;
    size_t kl;
    if (!param_key(&p, end, &k, &kl)) continue;
    char v[MP_MAX_BOUNDARY + 2];
    size_t vl;
    if (!param_value(&p, end, v, sizeof v, &vl)) return -1;
    if (kl == 8 && strncasecmp(k, "boundary", 8) == 0) {
      if (vl == 0 || vl > MP_MAX_BOUNDARY || vl >= cap) return -1;
      for (size_t i = 0; i < vl; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return -1;
      memcpy(out, v, vl + 1);
      found = true;
    }
  }
  return found ? 0 : -1;
}

/* Content-Disposition: form-data; name="..."; filename="..." */
static int disposition(const char *v, const char *end, mp_part *pt, char *err, size_t err_len) {
  while (v < end && is_ws(*v)) v++;
  if ((size_t)(end - v) < 9 || strncasecmp(v, "form-data", 9) != 0 ||
      (v + 9 < end && v[9] != ';' && !is_ws(v[9]))) {
    snprintf(err, err_len, "a part's Content-Disposition is not form-data");
    return -1;
  }
  const char *p = v + 9;
  bool has_name = false;
  while (p < end) {
    const char *k;
    size_t kl;
    if (!param_key(&p, end, &k, &kl)) continue;
    char val[256];
    size_t vl;
    if (!param_value(&p, end, val, sizeof val, &vl)) {
      snprintf(err, err_len, "a part's Content-Disposition has an unterminated quote");
      return -1;
    }
    if (kl == 4 && strncasecmp(k, "name", 4) == 0) {
      if (vl >= sizeof pt->name || memchr(val, '\0', vl)) {
        snprintf(err, err_len, "a form field's name is too long");
        return -1;
      }
      memcpy(pt->name, val, vl + 1);
      has_name = true;
    } else if (kl == 8 && strncasecmp(k, "filename", 8) == 0) {
      copy_str(pt->filename, sizeof pt->filename, val,
               vl < sizeof pt->filename ? vl : sizeof pt->filename - 1);
      pt->has_filename = true;
    }
  }
  if (!has_name) {
    snprintf(err, err_len, "a part has no field name");
    return -1;
  }
  return 0;
}

static int part_headers(const char *h, const char *end, mp_part *pt, char *err, size_t err_len) {
  bool has_cd = false;
  while (h < end) {
    const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
    if (!eol) eol = end;
    const char *colon = memchr(h, ':', (size_t)(eol - h));
    if (colon && !is_ws(*h)) { /* a folded continuation line (obsolete) is ignored */
      size_t nl = (size_t)(colon - h);
      const char *v = colon + 1;
      if (nl == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
        if (disposition(v, eol, pt, err, err_len)) return -1;
        has_cd = true;
      } else if (nl == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
        while (v < eol && is_ws(*v)) v++;
        size_t tl = (size_t)(eol - v);
        copy_str(pt->content_type, sizeof pt->content_type, v,
                 tl < sizeof pt->content_type ? tl : sizeof pt->content_type - 1);
      }
    } else if (!colon && eol > h && !is_ws(*h)) {
      snprintf(err, err_len, "a part has a malformed header line");
      return -1;
    }
    if (eol == end) break;
    h = eol + 2;
  }
  if (!has_cd) {
    snprintf(err, err_len, "a part has no Content-Disposition header");
    return -1;
  }
  return 0;
}

int mp_parse(const char *body, size_t len, const char *boundary, mp_part *parts, size_t max_parts,
             size_t *n_parts, char *err, size_t err_len) {
  *n_parts = 0;
  char delim[MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
  size_t bl = strlen(boundary);
  if (bl == 0 || bl > MP_MAX_BOUNDARY) {
    snprintf(err, err_len, "invalid multipart boundary");
    return -1;
  }
  memcpy(delim, "\r\n--", 4);
  memcpy(delim + 4, boundary, bl);
  size_t dl = bl + 4;
  const char *end = body + len, *p;
  /* the first delimiter: at the very start, or after a preamble */
  if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0) {
    p = body + dl - 2;
  } else {
    const char *f = memmem(body, len, delim, dl);
    if (!f) {
      snprintf(err, err_len, "the body has no multipart boundary (is it multipart/form-data?)");
      return -1;
    }
    p = f + dl;
  }
  size_t n = 0;
  for (;;) {
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') break; /* the close delimiter */
    while (p < end && is_ws(*p)) p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
      snprintf(err, err_len, "the multipart body is truncated or malformed");
      return -1;
    }
    p += 2;
    const char *hend;
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
      hend = p; /* no headers */
    } else {
      size_t room = (size_t)(end - p);
      if (room > MP_MAX_HEADER + 4) room = MP_MAX_HEADER + 4;
      hend = memmem(p, room, "\r\n\r\n", 4);
      if (!hend) {
        snprintf(err, err_len, "a part's headers are unterminated or longer than %d bytes",
                 MP_MAX_HEADER);
        return -1;
      }
      hend += 2; /* keep the last header's CRLF out of the header span */
    }
    if (n >= max_parts) {
      snprintf(err, err_len, "too many form fields (limit %zu)", max_parts);
      return -1;
    }
    mp_part *pt = &parts[n];
    memset(pt, 0, sizeof *pt);
    if (part_headers(p, hend == p ? p : hend - 2, pt, err, err_len)) return -1;
    const char *data = hend + 2;
    const char *next = memmem(data, (size_t)(end - data), delim, dl);
    if (!next) {
      snprintf(err, err_len, "the multipart body ends inside a part (no closing boundary)");
      return -1;
    }
    pt->data = data;
    pt->len = (size_t)(next - data);
    n++;
    p = next + dl;
  }
  *n_parts = n;
  return 0;
}

const mp_part *mp_find(const mp_part *parts, size_t n, const char *name) {
  const mp_part *found = NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(parts[i].name, name) == 0) found = &parts[i];
  return found;
}

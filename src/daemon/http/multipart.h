/* multipart.h — a bounded multipart/form-data parser (RFC 7578) over a body http.c has already
 * buffered (its size is capped there). Parts point into the body: nothing is copied but the
 * names. Pure: no I/O, no globals; every input is hostile (fuzzed by tests/fuzz/fuzz_multipart.c).
 * Limits: MP_MAX_PARTS parts, MP_MAX_HEADER bytes of headers per part, names and filenames cut
 * to their buffers' size (a longer field name is refused, since it would match a wrong field).
 * Exports mp_* (short for multipart). */
#ifndef SY_MULTIPART_H
#define SY_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#define MP_MAX_PARTS 64
#define MP_MAX_HEADER 8192
#define MP_MAX_BOUNDARY 70 /* RFC 2046 */

typedef struct mp_part {
  char name[128];         /* the form field's name */
  char filename[256];     /* "" when the part is not a file */
  char content_type[128]; /* "" when not given */
  bool has_filename;
  const char *data; /* into the body */
  size_t len;
} mp_part;

/* The boundary of a Content-Type header "multipart/form-data; boundary=..." (quoted or not),
 * into out (NUL-terminated). 0, or -1 when the type is not multipart/form-data or the boundary
 * is missing or invalid. */
int mp_boundary(const char *content_type, char *out, size_t cap);

/* Split body into parts. 0 with *n_parts set, or -1 with a one-line reason in err. */
int mp_parse(const char *body, size_t len, const char *boundary, mp_part *parts, size_t max_parts,
             size_t *n_parts, char *err, size_t err_len);

/* The last part named name (later ones win, as most form parsers do), or NULL. */
const mp_part *mp_find(const mp_part *parts, size_t n, const char *name);

#endif

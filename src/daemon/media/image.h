/* image.h — the daemon's decoder of vision inputs (OpenAI `image_url` content parts). The daemon
 * decodes every image itself so that a worker never parses an untrusted image file: it gets raw
 * 8-bit RGB. PNG (libpng), JPEG (libjpeg-turbo) and WebP (libwebp, animated: first frame) are
 * accepted. Every input is hostile: sizes are checked against the limits from the header, before
 * pixel memory is allocated; a bad file is an error, never a crash, an abort or a leak.
 * Alpha is composited onto white. Gamma and colour profiles are ignored (samples are taken as
 * they are, as llama.cpp's own loader does). Exports sy_image_*; base64 is media/base64.h. */
#ifndef SY_IMAGE_H
#define SY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sy_image {
  uint32_t w, h;
  unsigned char *rgb; /* w*h*3 bytes, row-major, malloc'd */
} sy_image;

typedef struct sy_image_limits {
  size_t max_bytes;    /* encoded (decoded-from-base64) file size; 0: default 20 MiB */
  uint64_t max_pixels; /* w*h; 0: default 33 554 432 (e.g. 8192x4096) */
  uint32_t max_side;   /* w and h each; 0: default 16384 */
} sy_image_limits;

#define SY_IMAGE_MAX_BYTES_DEFAULT ((size_t)20 << 20)
#define SY_IMAGE_MAX_PIXELS_DEFAULT ((uint64_t)33554432)
#define SY_IMAGE_MAX_SIDE_DEFAULT 16384u

/* Decode one OpenAI image_url value (url_len bytes, need not be NUL-terminated):
 *   - data:image/png;base64,...  (also image/jpeg, image/jpg, image/webp; other parameters before
 *     ";base64" are allowed). The declared type must match the file's magic bytes.
 *   - when allow_dir is non-NULL: a file path, or a file:// URL (percent-decoded), that must
 *     resolve (realpath, symlinks followed) to a regular file inside allow_dir. A relative path
 *     is taken relative to allow_dir.
 *   - http(s) URLs are refused ("remote image URLs are not fetched"), as is any other scheme.
 * lim may be NULL (defaults). Returns 0 and *out (free with sy_image_free), or -1 with a one-line
 * reason in err (the caller turns it into a 400). Thread safe. */
int sy_image_decode_url(const char *url, size_t url_len, const char *allow_dir,
                        const sy_image_limits *lim, sy_image *out, char *err, size_t err_len);

/* Decode a PNG, JPEG or WebP file in memory, chosen by its magic bytes. Same contract. */
int sy_image_decode(const unsigned char *data, size_t len, const sy_image_limits *lim,
                    sy_image *out, char *err, size_t err_len);

void sy_image_free(sy_image *img);

#endif

/* image.c — see image.h. One decoder per format, each with the library's own error hook: libpng
 * and libjpeg report errors by longjmp to a setjmp in the decoding function itself, which frees
 * everything it holds (pointers assigned after setjmp are volatile); libwebp returns codes. */
#include "media/image.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* jpeglib.h needs stdio.h before it, and jerror.h comes after jpeglib.h */
/* clang-format off */
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>
/* clang-format on */

#include "media/base64.h"

enum { FMT_NONE, FMT_PNG, FMT_JPEG, FMT_WEBP };
static const char *const fmt_name[] = {"unknown", "png", "jpeg", "webp"};

#define JPEG_MAX_SCANS 500             /* a progressive JPEG with more scans is a CPU bomb */
#define PNG_CHUNK_MALLOC_MAX (8 << 20) /* ancillary chunks (iCCP, zTXt, ...) decompressed */
#define PNG_CHUNK_CACHE_MAX 128

/* ---- helpers -------------------------------------------------------------------------------- */

/* A one-line message: control characters (a library's "\n") become spaces. */
static void set_err(char *err, size_t err_len, const char *fmt, ...) {
  if (!err || !err_len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
  size_t n = strlen(err);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f) err[i] = ' ';
  while (n && err[n - 1] == ' ') err[--n] = '\0';
}

/* Up to 40 printable characters of a client's string, for quoting in a message. */
static void quote(char *dst, size_t cap, const char *s, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n && j + 4 < cap && i < 40; i++)
    dst[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  if (n > 40 && j + 4 < cap) {
    memcpy(dst + j, "...", 3);
    j += 3;
  }
  dst[j] = '\0';
}

static void lim_resolve(const sy_image_limits *in, sy_image_limits *o) {
  o->max_bytes = in && in->max_bytes ? in->max_bytes : SY_IMAGE_MAX_BYTES_DEFAULT;
  o->max_pixels = in && in->max_pixels ? in->max_pixels : SY_IMAGE_MAX_PIXELS_DEFAULT;
  o->max_side = in && in->max_side ? in->max_side : SY_IMAGE_MAX_SIDE_DEFAULT;
}

/* Called with the header's size, before any pixel memory exists. */
static int check_dims(uint64_t w, uint64_t h, const sy_image_limits *lim, char *err,
                      size_t err_len) {
  if (w == 0 || h == 0) {
    set_err(err, err_len, "image has zero width or height");
    return -1;
  }
  if (w > lim->max_side || h > lim->max_side) {
    set_err(err, err_len, "image is %llux%llu; the largest side allowed is %u",
            (unsigned long long)w, (unsigned long long)h, lim->max_side);
    return -1;
  }
  if (w * h > lim->max_pixels || w * h > SIZE_MAX / 4) {
    set_err(err, err_len, "image is %llux%llu (%llu pixels); at most %llu pixels are allowed",
            (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
            (unsigned long long)lim->max_pixels);
    return -1;
  }
  return 0;
}

/* RGBA → RGB over white, in place (the RGB output never overtakes the RGBA input). */
static void composite_white(unsigned char *px, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const unsigned char *s = px + 4 * i;
    unsigned a = s[3], na = 255 - a;
    unsigned char r = (unsigned char)((s[0] * a + 255 * na + 127) / 255);
    unsigned char g = (unsigned char)((s[1] * a + 255 * na + 127) / 255);
    unsigned char b = (unsigned char)((s[2] * a + 255 * na + 127) / 255);
    px[3 * i] = r;
    px[3 * i + 1] = g;
    px[3 * i + 2] = b;
  }
}

static unsigned char *shrink(unsigned char *px, size_t n) {
  unsigned char *p = realloc(px, n);
  return p ? p : px;
}

/* A decoder's result into out: px (w*h pixels, RGBA when alpha, else RGB; taken over) composited
 * on white and cut to RGB when alpha. Returns 0. */
static int finish(sy_image *out, unsigned char *px, uint32_t w, uint32_t h, int alpha) {
  if (alpha) {
    composite_white(px, (size_t)w * h);
    px = shrink(px, (size_t)w * h * 3);
  }
  out->w = w;
  out->h = h;
  out->rgb = px;
  return 0;
}

static int sniff(const unsigned char *d, size_t n) {
  if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return FMT_JPEG;
  if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return FMT_WEBP;
  return FMT_NONE;
}

/* ---- PNG ------------------------------------------------------------------------------------ */

typedef struct png_src {
  const unsigned char *data;
  size_t len, pos;
  char *err;
  size_t err_len;
} png_src;

static void png_err_fn(png_structp png, png_const_charp msg) {
  png_src *s = png_get_error_ptr(png);
  set_err(s->err, s->err_len, "invalid PNG: %s", msg);
  png_longjmp(png, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_fn(png_structp png, png_bytep out, size_t n) {
  png_src *s = png_get_io_ptr(png);
  if (n > s->len - s->pos) png_error(png, "truncated file");
  memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int decode_png(const unsigned char *data, size_t len, const sy_image_limits *lim,
                      sy_image *out, char *err, size_t err_len) {
  /* IHDR must be the first chunk: check its size with our own message before libpng runs (its
   * user limits below are the second line). */
  if (len < 33 || memcmp(data + 12, "IHDR", 4) != 0) {
    set_err(err, err_len, "invalid PNG: truncated or missing IHDR");
    return -1;
  }
  if (check_dims(be32(data + 16), be32(data + 20), lim, err, err_len) != 0) return -1;

  png_src src = {data, len, 0, err, err_len};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_err_fn, png_warn_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    set_err(err, err_len, "out of memory");
    return -1;
  }
  unsigned char *volatile px = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, NULL);
    free(px);
    free(rows);
    return -1;
  }
  png_set_user_limits(png, lim->max_side, lim->max_side);
  png_set_chunk_cache_max(png, PNG_CHUNK_CACHE_MAX);
  png_set_chunk_malloc_max(png, PNG_CHUNK_MALLOC_MAX);
  png_set_read_fn(png, &src, png_read_fn);
  png_read_info(png, info);

  png_uint_32 w, h;
  int depth, ctype, interlace;
  png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
  if (check_dims(w, h, lim, err, err_len) != 0) png_longjmp(png, 1);
  /* Everything to 8-bit RGB or RGBA (alpha from an alpha channel or a tRNS chunk). */
  int alpha = (ctype & PNG_COLOR_MASK_ALPHA) != 0;
  if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) {
    png_set_tRNS_to_alpha(png);
    alpha = 1;
  }
  if (depth == 16) png_set_scale_16(png);
  if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  size_t ch = alpha ? 4 : 3;
  if (png_get_rowbytes(png, info) != (size_t)w * ch || png_get_channels(png, info) != ch)
    png_error(png, "unexpected row layout");
  px = malloc((size_t)w * h * ch);
  rows = malloc((size_t)h * sizeof(png_bytep));
  if (!px || !rows) png_error(png, "out of memory");
  for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * ch;
  png_read_image(png, rows);
  /* No png_read_end: what follows the pixels (even a missing IEND) does not matter. */
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  return finish(out, px, w, h, alpha);
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

typedef struct jpg_err {
  struct jpeg_error_mgr pub; /* first: libjpeg sees only this */
  jmp_buf jb;
  char *err;
  size_t err_len;
} jpg_err;

static void jpg_error_exit(j_common_ptr c) {
  jpg_err *e = (jpg_err *)c->err;
  char msg[JMSG_LENGTH_MAX];
  c->err->format_message(c, msg);
  set_err(e->err, e->err_len, "invalid JPEG: %s", msg);
  longjmp(e->jb, 1);
}

/* Warnings are ignored (browsers show slightly corrupt JPEGs too), except the end of the data
 * before the end of the image: libjpeg would pad it with grey, we call it truncated. */
static void jpg_emit(j_common_ptr c, int level) {
  if (level >= 0) return;
  jpg_err *e = (jpg_err *)c->err;
  if (c->err->msg_code == JWRN_JPEG_EOF) {
    set_err(e->err, e->err_len, "invalid JPEG: truncated file");
    longjmp(e->jb, 1);
  }
  c->err->num_warnings++;
}

static void jpg_output(j_common_ptr c) { (void)c; }

static void jpg_progress(j_common_ptr c) {
  if (!c->is_decompressor || ((j_decompress_ptr)c)->input_scan_number <= JPEG_MAX_SCANS) return;
  jpg_err *e = (jpg_err *)c->err;
  set_err(e->err, e->err_len, "invalid JPEG: more than %d scans", JPEG_MAX_SCANS);
  longjmp(e->jb, 1);
}

static int decode_jpeg(const unsigned char *data, size_t len, const sy_image_limits *lim,
                       sy_image *out, char *err, size_t err_len) {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_progress_mgr prog = {.progress_monitor = jpg_progress};
  jpg_err je;
  cinfo.err = jpeg_std_error(&je.pub);
  je.pub.error_exit = jpg_error_exit;
  je.pub.emit_message = jpg_emit;
  je.pub.output_message = jpg_output;
  je.err = err;
  je.err_len = err_len;
  unsigned char *volatile px = NULL;
  unsigned char *volatile tmp = NULL;
  if (setjmp(je.jb)) {
    jpeg_destroy_decompress(&cinfo);
    free(px);
    free(tmp);
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &prog;
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  if (check_dims(cinfo.image_width, cinfo.image_height, lim, err, err_len) != 0) longjmp(je.jb, 1);
  /* A progressive image keeps every coefficient (2 bytes a sample, MCU-padded) until the end;
   * cap libjpeg's whole-image buffers at that plus slack (without a backing store, more is an
   * error, not a swap file). */
  uint64_t need = ((uint64_t)cinfo.image_width + 32) * ((uint64_t)cinfo.image_height + 32) *
                  (uint64_t)cinfo.num_components * 2;
  cinfo.mem->max_memory_to_use = (long)(need + (32 << 20));
  /* libjpeg converts YCbCr/grey/RGB to RGB itself, not CMYK/YCCK: those come out as CMYK. */
  int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  size_t w = cinfo.output_width, h = cinfo.output_height;
  if (w != cinfo.image_width || h != cinfo.image_height ||
      cinfo.output_components != (cmyk ? 4 : 3)) {
    set_err(err, err_len, "invalid JPEG: unexpected output layout");
    longjmp(je.jb, 1);
  }
  px = malloc(w * h * 3);
  if (cmyk) tmp = malloc(w * 4);
  if (!px || (cmyk && !tmp)) {
    set_err(err, err_len, "out of memory");
    longjmp(je.jb, 1);
  }
  /* Adobe's CMYK JPEGs (Photoshop) store inverted ink values; without that marker, plain ones. */
  int inverted = cinfo.saw_Adobe_marker;
  while (cinfo.output_scanline < h) {
    unsigned char *dst = px + (size_t)cinfo.output_scanline * w * 3;
    JSAMPROW row = cmyk ? tmp : dst;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
      set_err(err, err_len, "invalid JPEG: truncated file");
      longjmp(je.jb, 1);
    }
    if (!cmyk) continue;
    for (size_t x = 0; x < w; x++) {
      unsigned c = tmp[4 * x], m = tmp[4 * x + 1], y = tmp[4 * x + 2], k = tmp[4 * x + 3];
      if (!inverted) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
      dst[3 * x] = (unsigned char)((c * k + 127) / 255);
      dst[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
      dst[3 * x + 2] = (unsigned char)((y * k + 127) / 255);
    }
  }
  /* No jpeg_finish_decompress: whatever follows the last scanline does not matter. */
  jpeg_destroy_decompress(&cinfo);
  free(tmp);
  return finish(out, px, (uint32_t)w, (uint32_t)h, 0);
}

/* ---- WebP ----------------------------------------------------------------------------------- */

static const char *webp_status(VP8StatusCode st) {
  switch (st) {
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "truncated file";
    default:
      return "error";
  }
}

/* The first frame of an animation, composed on its canvas by libwebpdemux. */
static int decode_webp_anim(const unsigned char *data, size_t len, uint32_t w, uint32_t h,
                            sy_image *out, char *err, size_t err_len) {
  WebPAnimDecoderOptions opt;
  if (!WebPAnimDecoderOptionsInit(&opt)) {
    set_err(err, err_len, "invalid WebP: library version mismatch");
    return -1;
  }
  opt.color_mode = MODE_RGBA;
  opt.use_threads = 0;
  WebPData wd = {data, len};
  WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &opt);
  if (!dec) {
    set_err(err, err_len, "invalid WebP: corrupt or truncated animation");
    return -1;
  }
  WebPAnimInfo ai;
  uint8_t *canvas = NULL;
  int ts;
  if (!WebPAnimDecoderGetInfo(dec, &ai) || ai.canvas_width != w || ai.canvas_height != h ||
      !WebPAnimDecoderGetNext(dec, &canvas, &ts) || !canvas) {
    WebPAnimDecoderDelete(dec);
    set_err(err, err_len, "invalid WebP: corrupt or truncated animation");
    return -1;
  }
  unsigned char *px = malloc((size_t)w * h * 4);
  if (!px) {
    WebPAnimDecoderDelete(dec);
    set_err(err, err_len, "out of memory");
    return -1;
  }
  memcpy(px, canvas, (size_t)w * h * 4);
  WebPAnimDecoderDelete(dec);
  return finish(out, px, w, h, 1);
}

static int decode_webp(const unsigned char *data, size_t len, const sy_image_limits *lim,
                       sy_image *out, char *err, size_t err_len) {
  WebPDecoderConfig cfg;
  if (!WebPInitDecoderConfig(&cfg)) {
    set_err(err, err_len, "invalid WebP: library version mismatch");
    return -1;
  }
  VP8StatusCode st = WebPGetFeatures(data, len, &cfg.input);
  if (st != VP8_STATUS_OK) {
    set_err(err, err_len, "invalid WebP: %s", webp_status(st));
    return -1;
  }
  if (cfg.input.width < 0 || cfg.input.height < 0 ||
      check_dims((uint64_t)cfg.input.width, (uint64_t)cfg.input.height, lim, err, err_len) != 0)
    return -1;
  uint32_t w = (uint32_t)cfg.input.width, h = (uint32_t)cfg.input.height;
  if (cfg.input.has_animation) return decode_webp_anim(data, len, w, h, out, err, err_len);

  int alpha = cfg.input.has_alpha;
  size_t ch = alpha ? 4 : 3;
  unsigned char *px = malloc((size_t)w * h * ch);
  if (!px) {
    set_err(err, err_len, "out of memory");
    return -1;
  }
  cfg.options.use_threads = 0;
  cfg.output.colorspace = alpha ? MODE_RGBA : MODE_RGB;
  cfg.output.is_external_memory = 1;
  cfg.output.u.RGBA.rgba = px;
  cfg.output.u.RGBA.stride = (int)(w * ch);
  cfg.output.u.RGBA.size = (size_t)w * h * ch;
  st = WebPDecode(data, len, &cfg);
  WebPFreeDecBuffer(&cfg.output); /* frees nothing of ours (external memory) */
  if (st != VP8_STATUS_OK) {
    free(px);
    set_err(err, err_len, "invalid WebP: %s", webp_status(st));
    return -1;
  }
  return finish(out, px, w, h, alpha);
}

/* ---- entry points --------------------------------------------------------------------------- */

static int decode_fmt(int fmt, const unsigned char *data, size_t len, const sy_image_limits *lim,
                      sy_image *out, char *err, size_t err_len) {
  switch (fmt) {
    case FMT_PNG:
      return decode_png(data, len, lim, out, err, err_len);
    case FMT_JPEG:
      return decode_jpeg(data, len, lim, out, err, err_len);
    case FMT_WEBP:
      return decode_webp(data, len, lim, out, err, err_len);
    default:
      if (len >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0))
        set_err(err, err_len, "GIF images are not supported (png, jpeg, webp)");
      else
        set_err(err, err_len, "unrecognised image format (png, jpeg, webp)");
      return -1;
  }
}

int sy_image_decode(const unsigned char *data, size_t len, const sy_image_limits *lim_in,
                    sy_image *out, char *err, size_t err_len) {
  sy_image_limits lim;
  lim_resolve(lim_in, &lim);
  out->w = out->h = 0;
  out->rgb = NULL;
  if (!data || len == 0) {
    set_err(err, err_len, "empty image data");
    return -1;
  }
  if (len > lim.max_bytes) {
    set_err(err, err_len, "image file is larger than %zu bytes", lim.max_bytes);
    return -1;
  }
  return decode_fmt(sniff(data, len), data, len, &lim, out, err, err_len);
}

void sy_image_free(sy_image *img) {
  if (!img) return;
  free(img->rgb);
  img->rgb = NULL;
  img->w = img->h = 0;
}

static int has_prefix_ci(const char *s, size_t n, const char *p) {
  size_t k = strlen(p);
  return n >= k && strncasecmp(s, p, k) == 0;
}

static int decode_data_url(const char *url, size_t n, const sy_image_limits *lim, sy_image *out,
                           char *err, size_t err_len) {
  const char *p = url + 5, *end = url + n; /* after "data:" */
  const char *comma = memchr(p, ',', (size_t)(end - p));
  if (!comma) {
    set_err(err, err_len, "malformed data URL: no ','");
    return -1;
  }
  const char *semi = memchr(p, ';', (size_t)(comma - p));
  const char *type_end = semi ? semi : comma;
  size_t tlen = (size_t)(type_end - p);
  /* the last parameter must be ";base64" */
  if (!semi || comma - p < 7 || strncasecmp(comma - 7, ";base64", 7) != 0) {
    set_err(err, err_len, "data URL must be base64 (data:image/png;base64,...)");
    return -1;
  }
  int declared = FMT_NONE;
  if (tlen == 9 && strncasecmp(p, "image/png", 9) == 0)
    declared = FMT_PNG;
  else if (tlen == 10 && strncasecmp(p, "image/jpeg", 10) == 0)
    declared = FMT_JPEG;
  else if (tlen == 9 && strncasecmp(p, "image/jpg", 9) == 0)
    declared = FMT_JPEG;
  else if (tlen == 10 && strncasecmp(p, "image/webp", 10) == 0)
    declared = FMT_WEBP;
  if (declared == FMT_NONE) {
    char q[64];
    quote(q, sizeof q, p, tlen);
    set_err(err, err_len, "unsupported image type '%s' (image/png, image/jpeg, image/webp)", q);
    return -1;
  }
  unsigned char *bytes;
  size_t len;
  if (sy_base64_decode(comma + 1, (size_t)(end - comma - 1), lim->max_bytes, &bytes, &len, err,
                       err_len) != 0)
    return -1;
  if (len == 0) {
    free(bytes);
    set_err(err, err_len, "empty image data");
    return -1;
  }
  int actual = sniff(bytes, len);
  int rc;
  if (actual != declared) {
    if (actual == FMT_NONE)
      set_err(err, err_len, "declared image/%s but the data is not a png, jpeg or webp file",
              fmt_name[declared]);
    else
      set_err(err, err_len, "declared image/%s but the data is %s", fmt_name[declared],
              fmt_name[actual]);
    rc = -1;
  } else {
    rc = decode_fmt(actual, bytes, len, lim, out, err, err_len);
  }
  free(bytes);
  return rc;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Read the file at path (already checked to be inside the directory) without following a
 * last-component symlink and without blocking on a FIFO. */
static int read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                     char *err, size_t err_len) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, err_len, "image file cannot be opened: %s", strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    set_err(err, err_len, "image path is not a regular file");
    return -1;
  }
  if ((uint64_t)st.st_size > max_bytes) {
    close(fd);
    set_err(err, err_len, "image file is larger than %zu bytes", max_bytes);
    return -1;
  }
  size_t cap = (size_t)st.st_size, n = 0;
  unsigned char *buf = malloc(cap ? cap : 1);
  if (!buf) {
    close(fd);
    set_err(err, err_len, "out of memory");
    return -1;
  }
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* shrank meanwhile: decode what is there */
    n += (size_t)r;
  }
  close(fd);
  *data = buf;
  *len = n;
  return 0;
}

static int decode_path(const char *url, size_t n, const char *allow_dir, const sy_image_limits *lim,
                       sy_image *out, char *err, size_t err_len) {
  int rc = -1;
  char *path = NULL, *full = NULL, *rdir = NULL, *rfile = NULL;
  unsigned char *data = NULL;
  size_t len = 0, plen = n;
  if (has_prefix_ci(url, n, "file:")) {
    /* file:///abs or file://localhost/abs, percent-decoded */
    const char *p = url + 5, *end = url + n;
    if (end - p >= 2 && p[0] == '/' && p[1] == '/') {
      p += 2;
      if (has_prefix_ci(p, (size_t)(end - p), "localhost/")) p += 9;
    }
    if (p == end || *p != '/') {
      set_err(err, err_len, "file URL must be file:///absolute/path");
      goto out;
    }
    path = malloc((size_t)(end - p) + 1);
    if (!path) goto oom;
    size_t k = 0;
    for (; p < end; p++) {
      if (*p == '%') {
        int hi = end - p > 2 ? hexval(p[1]) : -1, lo = end - p > 2 ? hexval(p[2]) : -1;
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
          set_err(err, err_len, "file URL has a bad %%-escape");
          goto out;
        }
        path[k++] = (char)(hi << 4 | lo);
        p += 2;
      } else {
        path[k++] = *p;
      }
    }
    path[k] = '\0';
    plen = k;
  } else {
    path = strndup(url, n);
    if (!path) goto oom;
  }
  if (strlen(path) != plen || !path[0]) {
    set_err(err, err_len, "image path is empty or contains a NUL byte");
    goto out;
  }
  if (path[0] == '/') {
    full = path;
    path = NULL;
  } else if (asprintf(&full, "%s/%s", allow_dir, path) < 0) {
    full = NULL;
    goto oom;
  }
  rdir = realpath(allow_dir, NULL);
  if (!rdir) {
    set_err(err, err_len, "image directory is not available: %s", strerror(errno));
    goto out;
  }
  /* One message for "missing" and "outside" (whatever errno says), so that a client cannot
   * probe which files exist elsewhere on the machine. */
  rfile = realpath(full, NULL);
  size_t dl = strlen(rdir);
  if (!rfile || (strcmp(rdir, "/") != 0 && (strncmp(rfile, rdir, dl) != 0 || rfile[dl] != '/'))) {
    set_err(err, err_len, "image file not found inside the allowed directory");
    goto out;
  }
  if (read_file(rfile, lim->max_bytes, &data, &len, err, err_len) != 0) goto out;
  if (len == 0) {
    set_err(err, err_len, "empty image data");
    goto out;
  }
  rc = decode_fmt(sniff(data, len), data, len, lim, out, err, err_len);
  goto out;
oom:
  set_err(err, err_len, "out of memory");
out:
  free(path);
  free(full);
  free(rdir);
  free(rfile);
  free(data);
  return rc;
}

int sy_image_decode_url(const char *url, size_t n, const char *allow_dir,
                        const sy_image_limits *lim_in, sy_image *out, char *err, size_t err_len) {
  sy_image_limits lim;
  lim_resolve(lim_in, &lim);
  out->w = out->h = 0;
  out->rgb = NULL;
  if (!url || n == 0) {
    set_err(err, err_len, "empty image URL");
    return -1;
  }
  if (has_prefix_ci(url, n, "data:")) return decode_data_url(url, n, &lim, out, err, err_len);
  if (has_prefix_ci(url, n, "http://") || has_prefix_ci(url, n, "https://")) {
    set_err(err, err_len, "remote image URLs are not fetched; send a data: URL");
    return -1;
  }
  /* Another scheme ("ftp:", "blob:")? A letter, then letters/digits/+-., then ':'. */
  size_t i = 0;
  if (isalpha((unsigned char)url[0])) {
    for (i = 1; i < n &&
                (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.');
         i++) {
    }
  }
  if (i >= 2 && i < n && url[i] == ':' && !has_prefix_ci(url, n, "file:")) {
    char q[64];
    quote(q, sizeof q, url, i);
    set_err(err, err_len, "unsupported image URL scheme '%s' (data: only)", q);
    return -1;
  }
  if (!allow_dir) {
    set_err(err, err_len, "image file paths are not accepted; send a data: URL");
    return -1;
  }
  return decode_path(url, n, allow_dir, &lim, out, err, err_len);
}

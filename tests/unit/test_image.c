/* test_image.c — unit tests of image.c: PNG, JPEG and WebP files made here with the same libs
 * (every PNG colour type and depth, interlacing, CMYK and progressive JPEG, lossy, lossless, alpha
 * and animated WebP), decoded through data: URLs and files; every error case; every prefix of
 * small files; and random byte flips (run under ASan by `make test`). Writes only under mkdtemp. */
#include "media/base64.h"
#include "media/image.h"

/* cmocka.h needs these before it */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
/* clang-format on */

#include <jpeglib.h> /* after stdio.h */
#include <png.h>
#include <webp/encode.h>

#define W 13 /* odd sizes exercise Adam7 passes and JPEG edge blocks */
#define H 7

/* ---- growable bytes ------------------------------------------------------------------------- */

typedef struct mb {
  unsigned char *b;
  size_t len, cap;
} mb;

static void mb_put(mb *m, const void *p, size_t n) {
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2 + 64;
    m->b = realloc(m->b, m->cap);
    assert_non_null(m->b);
  }
  memcpy(m->b + m->len, p, n);
  m->len += n;
}
static void mb_u32le(mb *m, uint32_t v) {
  unsigned char b[4] = {v, v >> 8, v >> 16, v >> 24};
  mb_put(m, b, 4);
}
static void mb_u24le(mb *m, uint32_t v) {
  unsigned char b[3] = {v, v >> 8, v >> 16};
  mb_put(m, b, 3);
}

/* ---- the test pattern ----------------------------------------------------------------------- */

static unsigned char pat_r(int x, int y) { return (unsigned char)(x * 19 + y * 3); }
static unsigned char pat_g(int x, int y) { return (unsigned char)(y * 37 + 5); }
static unsigned char pat_b(int x, int y) { return (unsigned char)((x + y) * 11 + 100); }
static unsigned char pat_a(int x, int y) { return (unsigned char)((x * 7 + y * 29) * 3); }
static unsigned char over_white(unsigned c, unsigned a) {
  return (unsigned char)((c * a + 255 * (255 - a) + 127) / 255);
}

/* ---- encoders ------------------------------------------------------------------------------- */

static void png_write_cb(png_structp png, png_bytep d, size_t n) {
  mb_put(png_get_io_ptr(png), d, n);
}
static void png_flush_cb(png_structp png) { (void)png; }

static png_color_16 *g_key; /* a tRNS colour key for the next grey/RGB image */

/* raw: h rows of packed samples in the PNG's own format (big-endian 16-bit) */
static mb enc_png(int w, int h, int ctype, int depth, int interlace, const unsigned char *raw,
                  const png_color *pal, int npal, const unsigned char *trns, int ntrns) {
  mb m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert_non_null(info);
  png_set_write_fn(png, &m, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, w, h, depth, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (pal) png_set_PLTE(png, info, pal, npal);
  if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
  if (g_key) png_set_tRNS(png, info, NULL, 0, g_key);
  png_write_info(png, info);
  size_t rb = png_get_rowbytes(png, info);
  png_bytep *rows = malloc(sizeof(png_bytep) * h);
  for (int y = 0; y < h; y++) rows[y] = (png_bytep)raw + y * rb;
  png_write_image(png, rows);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  free(rows);
  return m;
}

static mb png_rgb(int interlace) {
  unsigned char raw[W * H * 3];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      raw[(y * W + x) * 3] = pat_r(x, y);
      raw[(y * W + x) * 3 + 1] = pat_g(x, y);
      raw[(y * W + x) * 3 + 2] = pat_b(x, y);
    }
  return enc_png(W, H, PNG_COLOR_TYPE_RGB, 8, interlace, raw, NULL, 0, NULL, 0);
}

static mb enc_jpeg(int w, int h, int comps, J_COLOR_SPACE cs, const unsigned char *px, int quality,
                   int progressive) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *out = NULL;
  unsigned long outlen = 0;
  jpeg_mem_dest(&c, &out, &outlen);
  c.image_width = w;
  c.image_height = h;
  c.input_components = comps;
  c.in_color_space = cs;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)px + c.next_scanline * w * comps;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  mb m = {0};
  mb_put(&m, out, outlen);
  free(out);
  return m;
}

/* A smooth image, so that JPEG keeps it close. */
static unsigned char smooth(int x, int y, int c) {
  return (unsigned char)(10 + x * 2 + y * 2 + c * 50);
}
#define JW 40
#define JH 24
static mb jpeg_rgb(int progressive) {
  unsigned char px[JW * JH * 3];
  for (int y = 0; y < JH; y++)
    for (int x = 0; x < JW; x++)
      for (int c = 0; c < 3; c++) px[(y * JW + x) * 3 + c] = smooth(x, y, c);
  return enc_jpeg(JW, JH, 3, JCS_RGB, px, 95, progressive);
}

static mb webp_wrap(uint8_t *p, size_t n) {
  assert_true(n > 0);
  mb m = {0};
  mb_put(&m, p, n);
  WebPFree(p);
  return m;
}
static mb webp_lossless(int alpha) {
  unsigned char px[W * H * 4];
  int ch = alpha ? 4 : 3;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      unsigned char *p = px + (y * W + x) * ch;
      p[0] = pat_r(x, y), p[1] = pat_g(x, y), p[2] = pat_b(x, y);
      if (alpha) p[3] = pat_a(x, y);
    }
  uint8_t *o = NULL;
  size_t n = alpha ? WebPEncodeLosslessRGBA(px, W, H, W * 4, &o)
                   : WebPEncodeLosslessRGB(px, W, H, W * 3, &o);
  return webp_wrap(o, n);
}
static mb webp_lossy(void) {
  unsigned char px[JW * JH * 3];
  for (int y = 0; y < JH; y++)
    for (int x = 0; x < JW; x++)
      for (int c = 0; c < 3; c++) px[(y * JW + x) * 3 + c] = smooth(x, y, c);
  uint8_t *o = NULL;
  size_t n = WebPEncodeRGB(px, JW, JH, JW * 3, 95, &o);
  return webp_wrap(o, n);
}

/* An animated WebP by hand (RIFF, VP8X with the animation flag, ANIM, two ANMF frames) around
 * the VP8L chunk of a lossless still; canvas cw x ch, frame 1 at (0,0). */
static mb webp_anim(uint32_t cw, uint32_t ch) {
  mb still = webp_lossless(0);
  /* still: RIFF size WEBP "VP8L" size data */
  assert_memory_equal(still.b + 12, "VP8L", 4);
  const unsigned char *chunk = still.b + 12;
  size_t chunk_len = still.len - 12;
  mb body = {0};
  mb_put(&body, "WEBP", 4);
  mb_put(&body, "VP8X", 4);
  mb_u32le(&body, 10);
  unsigned char flags[4] = {0x02, 0, 0, 0}; /* animation */
  mb_put(&body, flags, 4);
  mb_u24le(&body, cw - 1);
  mb_u24le(&body, ch - 1);
  mb_put(&body, "ANIM", 4);
  mb_u32le(&body, 6);
  mb_u32le(&body, 0xffffffff); /* background: opaque white (ignored by libwebp's anim decoder) */
  unsigned char loops[2] = {0, 0};
  mb_put(&body, loops, 2);
  for (int f = 0; f < 2; f++) {
    mb_put(&body, "ANMF", 4);
    mb_u32le(&body, (uint32_t)(16 + chunk_len));
    mb_u24le(&body, 0); /* x/2 */
    mb_u24le(&body, 0); /* y/2 */
    mb_u24le(&body, W - 1);
    mb_u24le(&body, H - 1);
    mb_u24le(&body, 100); /* duration */
    unsigned char fl = 0;
    mb_put(&body, &fl, 1);
    mb_put(&body, chunk, chunk_len);
  }
  mb m = {0};
  mb_put(&m, "RIFF", 4);
  mb_u32le(&m, (uint32_t)body.len);
  mb_put(&m, body.b, body.len);
  free(body.b);
  free(still.b);
  return m;
}

/* ---- data URLs ------------------------------------------------------------------------------ */

static char *b64(const unsigned char *d, size_t n, int pad, int wrap) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *o = malloc(n * 2 + 8), *p = o;
  size_t i = 0;
  int col = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | d[i + 1] << 8 | d[i + 2];
    *p++ = a[v >> 18], *p++ = a[v >> 12 & 63], *p++ = a[v >> 6 & 63], *p++ = a[v & 63];
    if (wrap && (col += 4) >= 76) *p++ = '\r', *p++ = '\n', col = 0;
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)d[i] << 16;
    *p++ = a[v >> 18], *p++ = a[v >> 12 & 63];
    if (pad) *p++ = '=', *p++ = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)d[i] << 16 | d[i + 1] << 8;
    *p++ = a[v >> 18], *p++ = a[v >> 12 & 63], *p++ = a[v >> 6 & 63];
    if (pad) *p++ = '=';
  }
  *p = '\0';
  return o;
}

static char *data_url(const char *prefix, const mb *m) {
  char *e = b64(m->b, m->len, 1, 0);
  char *u = malloc(strlen(prefix) + strlen(e) + 1);
  strcpy(u, prefix);
  strcat(u, e);
  free(e);
  return u;
}

static char err[256];

static int dec_url(const char *url, const char *dir, const sy_image_limits *lim, sy_image *img) {
  err[0] = '\0';
  int rc = sy_image_decode_url(url, strlen(url), dir, lim, img, err, sizeof err);
  if (rc == 0) {
    assert_non_null(img->rgb);
  } else {
    assert_null(img->rgb);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
  }
  return rc;
}

/* decode m through a data URL with the given prefix; expects success */
static void dec_ok(const char *prefix, const mb *m, sy_image *img) {
  char *u = data_url(prefix, m);
  int rc = dec_url(u, NULL, NULL, img);
  if (rc != 0) fail_msg("%s: %s", prefix, err);
  free(u);
}

static void expect_err(const char *url, const char *dir, const sy_image_limits *lim,
                       const char *needle) {
  sy_image img;
  assert_int_equal(dec_url(url, dir, lim, &img), -1);
  if (needle && !strstr(err, needle))
    fail_msg("error '%s' lacks '%s' (url %.60s)", err, needle, url);
}

static void check_pattern(const sy_image *img, int alpha) {
  assert_int_equal(img->w, W);
  assert_int_equal(img->h, H);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const unsigned char *p = img->rgb + (y * W + x) * 3;
      unsigned a = alpha ? pat_a(x, y) : 255;
      assert_int_equal(p[0], over_white(pat_r(x, y), a));
      assert_int_equal(p[1], over_white(pat_g(x, y), a));
      assert_int_equal(p[2], over_white(pat_b(x, y), a));
    }
}

static void check_smooth(const sy_image *img, int tol) {
  assert_int_equal(img->w, JW);
  assert_int_equal(img->h, JH);
  for (int y = 0; y < JH; y++)
    for (int x = 0; x < JW; x++)
      for (int c = 0; c < 3; c++) {
        int d = (int)img->rgb[(y * JW + x) * 3 + c] - smooth(x, y, c);
        if (d < -tol || d > tol) fail_msg("pixel %d,%d,%d off by %d", x, y, c, d);
      }
}

/* m (freed here) decoded through a data URL with prefix is the test pattern (alpha composited on
 * white when alpha). */
static void dec_pattern(const char *prefix, mb *m, int alpha) {
  sy_image img;
  dec_ok(prefix, m, &img);
  check_pattern(&img, alpha);
  sy_image_free(&img);
  free(m->b);
}

/* ---- PNG ------------------------------------------------------------------------------------ */

static void test_png_rgb(void **st) {
  for (int il = 0; il < 2; il++) {
    mb m = png_rgb(il);
    sy_image img;
    dec_ok("data:image/png;base64,", &m, &img);
    check_pattern(&img, 0);
    sy_image_free(&img);
    assert_null(img.rgb);
    /* by magic bytes, without a URL */
    assert_int_equal(sy_image_decode(m.b, m.len, NULL, &img, err, sizeof err), 0);
    check_pattern(&img, 0);
    sy_image_free(&img);
    free(m.b);
  }
}

/* The test pattern at 16 bits a sample into raw: ch samples a pixel (3 RGB, 4 RGBA), each v written
 * as v*257 (both bytes v: scales back to v exactly). */
static void pattern16(unsigned char *raw, int ch) {
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      unsigned char v[4] = {pat_r(x, y), pat_g(x, y), pat_b(x, y), pat_a(x, y)};
      for (int c = 0; c < ch; c++)
        raw[(y * W + x) * 2 * ch + 2 * c] = raw[(y * W + x) * 2 * ch + 2 * c + 1] = v[c];
    }
}

static void test_png_rgba_16(void **st) {
  /* RGBA 8-bit: composited on white */
  unsigned char raw[W * H * 8];
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      unsigned char *p = raw + (y * W + x) * 4;
      p[0] = pat_r(x, y), p[1] = pat_g(x, y), p[2] = pat_b(x, y), p[3] = pat_a(x, y);
    }
  for (int il = 0; il < 2; il++) {
    mb m = enc_png(W, H, PNG_COLOR_TYPE_RGBA, 8, il, raw, NULL, 0, NULL, 0);
    dec_pattern("data:image/png;base64,", &m, 1);
  }
  /* RGBA 16-bit */
  pattern16(raw, 4);
  mb m = enc_png(W, H, PNG_COLOR_TYPE_RGBA, 16, 0, raw, NULL, 0, NULL, 0);
  dec_pattern("data:image/png;base64,", &m, 1);
  /* RGB 16-bit, interlaced */
  pattern16(raw, 3);
  m = enc_png(W, H, PNG_COLOR_TYPE_RGB, 16, 1, raw, NULL, 0, NULL, 0);
  dec_pattern("data:image/png;base64,", &m, 0);
}

static void test_png_gray(void **st) {
  sy_image img;
  /* 8-bit grey */
  unsigned char raw[W * H * 4];
  for (int i = 0; i < W * H; i++) raw[i] = (unsigned char)(i * 5);
  mb m = enc_png(W, H, PNG_COLOR_TYPE_GRAY, 8, 0, raw, NULL, 0, NULL, 0);
  dec_ok("data:image/png;base64,", &m, &img);
  for (int i = 0; i < W * H; i++)
    for (int c = 0; c < 3; c++) assert_int_equal(img.rgb[i * 3 + c], (unsigned char)(i * 5));
  sy_image_free(&img);
  free(m.b);
  /* 16-bit grey, interlaced */
  for (int i = 0; i < W * H; i++) raw[2 * i] = raw[2 * i + 1] = (unsigned char)(i * 3);
  m = enc_png(W, H, PNG_COLOR_TYPE_GRAY, 16, 1, raw, NULL, 0, NULL, 0);
  dec_ok("data:image/png;base64,", &m, &img);
  for (int i = 0; i < W * H; i++) assert_int_equal(img.rgb[i * 3 + 1], (unsigned char)(i * 3));
  sy_image_free(&img);
  free(m.b);
  /* 1-bit grey: a checkerboard, rows padded to a byte */
  memset(raw, 0, sizeof raw);
  int rb = (W + 7) / 8;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      if ((x + y) & 1) raw[y * rb + x / 8] |= (unsigned char)(0x80 >> (x % 8));
  m = enc_png(W, H, PNG_COLOR_TYPE_GRAY, 1, 0, raw, NULL, 0, NULL, 0);
  dec_ok("data:image/png;base64,", &m, &img);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      assert_int_equal(img.rgb[(y * W + x) * 3 + 2], (x + y) & 1 ? 255 : 0);
  sy_image_free(&img);
  free(m.b);
  /* grey + alpha: v over white */
  for (int i = 0; i < W * H; i++)
    raw[2 * i] = (unsigned char)(i * 7), raw[2 * i + 1] = (unsigned char)(i * 13);
  m = enc_png(W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, raw, NULL, 0, NULL, 0);
  dec_ok("data:image/png;base64,", &m, &img);
  for (int i = 0; i < W * H; i++)
    assert_int_equal(img.rgb[i * 3], over_white((unsigned char)(i * 7), (unsigned char)(i * 13)));
  sy_image_free(&img);
  free(m.b);
  /* grey with a tRNS colour key: value 0 becomes transparent → white */
  for (int i = 0; i < W * H; i++) raw[i] = (unsigned char)(i % 3 == 0 ? 0 : 100);
  png_color_16 key = {.gray = 0};
  g_key = &key;
  m = enc_png(W, H, PNG_COLOR_TYPE_GRAY, 8, 0, raw, NULL, 0, NULL, 0);
  g_key = NULL;
  dec_ok("data:image/png;base64,", &m, &img);
  for (int i = 0; i < W * H; i++) assert_int_equal(img.rgb[i * 3 + 1], i % 3 == 0 ? 255 : 100);
  sy_image_free(&img);
  free(m.b);
}

static void test_png_palette(void **st) {
  png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  unsigned char trns[3] = {255, 0, 128}; /* entry 1 transparent, 2 half, 3 opaque (implicit) */
  unsigned char raw[H * 4];
  memset(raw, 0, sizeof raw);
  int rb = (W * 2 + 7) / 8;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      raw[y * rb + x / 4] |= (unsigned char)(((x + y) % 4) << (6 - 2 * (x % 4)));
  for (int with_trns = 0; with_trns < 2; with_trns++) {
    mb m = enc_png(W, H, PNG_COLOR_TYPE_PALETTE, 2, with_trns, raw, pal, 4, with_trns ? trns : NULL,
                   3);
    sy_image img;
    dec_ok("data:image/png;base64,", &m, &img);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int k = (x + y) % 4;
        unsigned a = with_trns && k < 3 ? trns[k] : 255;
        const unsigned char *p = img.rgb + (y * W + x) * 3;
        assert_int_equal(p[0], over_white(pal[k].red, a));
        assert_int_equal(p[1], over_white(pal[k].green, a));
        assert_int_equal(p[2], over_white(pal[k].blue, a));
      }
    sy_image_free(&img);
    free(m.b);
  }
}

/* ---- JPEG ----------------------------------------------------------------------------------- */

static void test_jpeg(void **st) {
  for (int prog = 0; prog < 2; prog++) {
    mb m = jpeg_rgb(prog);
    sy_image img;
    dec_ok("data:image/jpeg;base64,", &m, &img);
    check_smooth(&img, 12);
    sy_image_free(&img);
    dec_ok("data:image/jpg;base64,", &m, &img);
    sy_image_free(&img);
    free(m.b);
  }
  /* greyscale */
  unsigned char g[JW * JH];
  for (int y = 0; y < JH; y++)
    for (int x = 0; x < JW; x++) g[y * JW + x] = smooth(x, y, 0);
  mb m = enc_jpeg(JW, JH, 1, JCS_GRAYSCALE, g, 95, 0);
  sy_image img;
  dec_ok("data:image/jpeg;base64,", &m, &img);
  for (int i = 0; i < JW * JH; i++) {
    int d = (int)img.rgb[i * 3] - g[i];
    assert_true(d >= -8 && d <= 8);
    assert_int_equal(img.rgb[i * 3], img.rgb[i * 3 + 2]);
  }
  sy_image_free(&img);
  free(m.b);
}

/* CMYK as Photoshop writes it: libjpeg emits an Adobe marker, and the ink values are inverted. */
static void test_jpeg_cmyk(void **st) {
  static const unsigned char rgb[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
  unsigned char px[16 * 16 * 4];
  for (int y = 0; y < 16; y++)
    for (int x = 0; x < 16; x++) {
      const unsigned char *c = rgb[(y / 8) * 2 + x / 8];
      unsigned char *p = px + (y * 16 + x) * 4;
      /* RGB → CMYK with K = 0; inverted storage: 255 - ink = the RGB value, K' = 255 */
      p[0] = c[0], p[1] = c[1], p[2] = c[2], p[3] = 255;
    }
  for (int prog = 0; prog < 2; prog++) {
    mb m = enc_jpeg(16, 16, 4, JCS_CMYK, px, 100, prog);
    sy_image img;
    dec_ok("data:image/jpeg;base64,", &m, &img);
    assert_int_equal(img.w, 16);
    for (int y = 0; y < 16; y++)
      for (int x = 0; x < 16; x++) {
        const unsigned char *c = rgb[(y / 8) * 2 + x / 8];
        for (int k = 0; k < 3; k++) {
          int d = (int)img.rgb[(y * 16 + x) * 3 + k] - c[k];
          if (d < -24 || d > 24)
            fail_msg("cmyk %d,%d,%d: %d vs %d", x, y, k, img.rgb[(y * 16 + x) * 3 + k], c[k]);
        }
      }
    sy_image_free(&img);
    free(m.b);
  }
}

/* ---- WebP ----------------------------------------------------------------------------------- */

static void test_webp(void **st) {
  sy_image img;
  mb m = webp_lossless(0);
  dec_pattern("data:image/webp;base64,", &m, 0);
  m = webp_lossless(1);
  dec_pattern("data:image/webp;base64,", &m, 1);
  m = webp_lossy();
  dec_ok("data:image/webp;base64,", &m, &img);
  check_smooth(&img, 16);
  sy_image_free(&img);
  free(m.b);
  /* animated: the first frame on its canvas; outside the frame the canvas is transparent →
   * white */
  m = webp_anim(W + 3, H + 2);
  dec_ok("data:image/webp;base64,", &m, &img);
  assert_int_equal(img.w, W + 3);
  assert_int_equal(img.h, H + 2);
  for (int y = 0; y < H + 2; y++)
    for (int x = 0; x < W + 3; x++) {
      const unsigned char *p = img.rgb + (y * (W + 3) + x) * 3;
      if (x < W && y < H) {
        assert_int_equal(p[0], pat_r(x, y));
        assert_int_equal(p[2], pat_b(x, y));
      } else {
        assert_int_equal(p[0], 255);
        assert_int_equal(p[1], 255);
      }
    }
  sy_image_free(&img);
  free(m.b);
}

/* ---- URL forms ------------------------------------------------------------------------------ */

static void test_url_forms(void **st) {
  mb m = png_rgb(0);
  sy_image img;
  dec_ok("DATA:IMAGE/PNG;BASE64,", &m, &img);
  sy_image_free(&img);
  dec_ok("data:image/png;name=a.png;base64,", &m, &img);
  sy_image_free(&img);
  /* unpadded, and wrapped at 76 columns with CRLF */
  for (int v = 0; v < 2; v++) {
    char *e = b64(m.b, m.len, v, !v);
    char *u = malloc(strlen(e) + 64);
    sprintf(u, "data:image/png;base64,%s", e);
    assert_int_equal(dec_url(u, NULL, NULL, &img), 0);
    check_pattern(&img, 0);
    sy_image_free(&img);
    /* not NUL-terminated: the length rules */
    size_t n = strlen(u);
    u[n] = 'x';
    assert_int_equal(sy_image_decode_url(u, n, NULL, NULL, &img, err, sizeof err), 0);
    sy_image_free(&img);
    free(u);
    free(e);
  }
  free(m.b);
  sy_image_free(NULL);
}

static void test_url_errors(void **st) {
  mb png = png_rgb(0), jpg = jpeg_rgb(0);
  char *u;
  expect_err("", NULL, NULL, "empty");
  expect_err("http://example.com/a.png", NULL, NULL, "remote image URLs are not fetched");
  expect_err("HTTPS://example.com/a.png", "/tmp", NULL, "remote image URLs are not fetched");
  expect_err("ftp://example.com/a.png", "/tmp", NULL, "scheme");
  expect_err("/tmp/a.png", NULL, NULL, "not accepted");
  expect_err("data:image/png;base64", NULL, NULL, "no ','");
  expect_err("data:image/png,abcd", NULL, NULL, "base64");
  expect_err("data:;base64,iVBORw0K", NULL, NULL, "unsupported image type");
  expect_err("data:image/gif;base64,R0lGODlh", NULL, NULL, "unsupported image type 'image/gif'");
  expect_err("data:image/png;base64,", NULL, NULL, "empty");
  expect_err("data:image/png;base64,iVBO*w0K", NULL, NULL, "invalid base64: character 0x2a");
  expect_err("data:image/png;base64,iVBO w0K", NULL, NULL, "invalid base64");
  expect_err("data:image/png;base64,iVB=Rw0K", NULL, NULL, "padding");
  expect_err("data:image/png;base64,iVBORw0", NULL, NULL, "not a png"); /* 5 bytes */
  expect_err("data:image/png;base64,iVBORw0KG", NULL, NULL, "padding"); /* 1 mod 4 */
  expect_err("data:image/png;base64,iVBORx==", NULL, NULL, "padding");  /* non-zero bits */
  expect_err("data:image/png;base64,iVBORw0=K", NULL, NULL, "padding");
  expect_err("data:image/png;base64,iVBORw0K===", NULL, NULL, "padding");
  expect_err("data:image/png;base64,R0lGODlhAQABAAAAACw=", NULL, NULL, "not a png");
  /* declared type vs magic bytes */
  u = data_url("data:image/jpeg;base64,", &png);
  expect_err(u, NULL, NULL, "declared image/jpeg but the data is png");
  free(u);
  u = data_url("data:image/webp;base64,", &jpg);
  expect_err(u, NULL, NULL, "declared image/webp but the data is jpeg");
  free(u);
  /* the raw decoder: garbage, GIF, empty */
  sy_image img;
  assert_int_equal(
      sy_image_decode((const unsigned char *)"GIF89a....", 10, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "GIF"));
  assert_int_equal(sy_image_decode((const unsigned char *)"hello", 5, NULL, &img, err, sizeof err),
                   -1);
  assert_int_equal(sy_image_decode(png.b, 0, NULL, &img, err, sizeof err), -1);
  free(png.b);
  free(jpg.b);
}

/* ---- limits --------------------------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = (unsigned char)v;
}

static void test_limits(void **st) {
  mb png = png_rgb(0), jpg = jpeg_rgb(0), wl = webp_lossless(0), anim = webp_anim(W, H);
  mb all[4] = {png, jpg, wl, anim};
  sy_image img;
  for (int i = 0; i < 4; i++) {
    uint32_t w = i == 1 ? JW : W, h = i == 1 ? JH : H;
    sy_image_limits side = {.max_side = w - 1}, pix = {.max_pixels = (uint64_t)w * h - 1},
                    bytes = {.max_bytes = all[i].len - 1},
                    fits = {.max_side = w > h ? w : h,
                            .max_pixels = (uint64_t)w * h,
                            .max_bytes = all[i].len};
    assert_int_equal(sy_image_decode(all[i].b, all[i].len, &side, &img, err, sizeof err), -1);
    assert_non_null(strstr(err, "largest side"));
    assert_int_equal(sy_image_decode(all[i].b, all[i].len, &pix, &img, err, sizeof err), -1);
    assert_non_null(strstr(err, "pixels"));
    assert_int_equal(sy_image_decode(all[i].b, all[i].len, &bytes, &img, err, sizeof err), -1);
    assert_non_null(strstr(err, "larger than"));
    assert_int_equal(sy_image_decode(all[i].b, all[i].len, &fits, &img, err, sizeof err), 0);
    sy_image_free(&img);
    /* through a data URL too (the base64 decoder stops at max_bytes) */
    static const char *const pre[4] = {"data:image/png;base64,", "data:image/jpeg;base64,",
                                       "data:image/webp;base64,", "data:image/webp;base64,"};
    char *u = data_url(pre[i], &all[i]);
    expect_err(u, NULL, &bytes, "larger than");
    expect_err(u, NULL, &pix, "pixels");
    free(u);
  }
  /* headers that claim huge or zero sizes: refused before any pixel memory */
  unsigned char *p = malloc(png.len);
  memcpy(p, png.b, png.len);
  put_be32(p + 16, 100000), put_be32(p + 20, 100000);
  assert_int_equal(sy_image_decode(p, png.len, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "largest side"));
  put_be32(p + 16, 16000), put_be32(p + 20, 16000);
  assert_int_equal(sy_image_decode(p, png.len, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "pixels"));
  put_be32(p + 16, 0);
  assert_int_equal(sy_image_decode(p, png.len, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "zero"));
  free(p);
  /* JPEG: the SOF marker's height and width */
  p = malloc(jpg.len);
  memcpy(p, jpg.b, jpg.len);
  size_t sof = 0;
  for (size_t i = 2; i + 9 < jpg.len; i++)
    if (p[i] == 0xff && p[i + 1] == 0xc0) {
      sof = i;
      break;
    }
  assert_true(sof > 0);
  p[sof + 5] = 0x75, p[sof + 6] = 0x30, p[sof + 7] = 0x75, p[sof + 8] = 0x30; /* 30000 */
  assert_int_equal(sy_image_decode(p, jpg.len, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "largest side"));
  p[sof + 5] = 0, p[sof + 6] = 0; /* height 0: libjpeg calls it empty (needs a DNL marker) */
  assert_int_equal(sy_image_decode(p, jpg.len, NULL, &img, err, sizeof err), -1);
  free(p);
  /* WebP: an animation canvas larger than the limits */
  mb big = webp_anim(20000, 20);
  assert_int_equal(sy_image_decode(big.b, big.len, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "largest side"));
  free(big.b);
  big = webp_anim(16000, 16000);
  assert_int_equal(sy_image_decode(big.b, big.len, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "pixels"));
  free(big.b);
  for (int i = 0; i < 4; i++) free(all[i].b);
}

/* ---- truncation and corruption -------------------------------------------------------------- */

static void every_prefix(const mb *m, uint32_t w, uint32_t h) {
  int ok = 0;
  for (size_t n = 0; n <= m->len; n++) {
    unsigned char *p = malloc(n ? n : 1); /* exact size, so ASan sees any over-read */
    memcpy(p, m->b, n);
    sy_image img;
    err[0] = '\0';
    int rc = sy_image_decode(p, n, NULL, &img, err, sizeof err);
    if (rc == 0) {
      assert_int_equal(img.w, w);
      assert_int_equal(img.h, h);
      sy_image_free(&img);
      ok++;
    } else {
      assert_null(img.rgb);
      assert_true(err[0] != '\0');
    }
    free(p);
  }
  assert_true(ok >= 1); /* the whole file */
}

static void test_truncated(void **st) {
  mb ms[] = {png_rgb(0),       png_rgb(1),       jpeg_rgb(0),  jpeg_rgb(1),
             webp_lossless(0), webp_lossless(1), webp_lossy(), webp_anim(W + 1, H + 1)};
  uint32_t ws[] = {W, W, JW, JW, W, W, JW, W + 1}, hs[] = {H, H, JH, JH, H, H, JH, H + 1};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
    every_prefix(&ms[i], ws[i], hs[i]);
    /* a truncated file is refused, not padded: cut in the middle of the pixel data */
    sy_image img;
    assert_int_equal(sy_image_decode(ms[i].b, ms[i].len * 2 / 3, NULL, &img, err, sizeof err), -1);
    /* trailing garbage is fine */
    mb t = {0};
    mb_put(&t, ms[i].b, ms[i].len);
    mb_put(&t, "garbage!", 8);
    assert_int_equal(sy_image_decode(t.b, t.len, NULL, &img, err, sizeof err), 0);
    sy_image_free(&img);
    free(t.b);
    free(ms[i].b);
  }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

/* Recompute every PNG chunk's CRC, so that flips reach libpng's parsers, not only its CRC check. */
static void png_fix_crcs(unsigned char *p, size_t len) {
  size_t at = 8;
  while (at + 12 <= len) {
    uint32_t n = (uint32_t)p[at] << 24 | p[at + 1] << 16 | p[at + 2] << 8 | p[at + 3];
    if (n > len - at - 12) break;
    put_be32(p + at + 8 + n, crc32_of(p + at + 4, n + 4));
    at += 12 + n;
  }
}

static void test_fuzz(void **st) {
  mb ms[] = {png_rgb(0),       png_rgb(1),   jpeg_rgb(0),    jpeg_rgb(1),
             webp_lossless(1), webp_lossy(), webp_anim(W, H)};
  int n = sizeof ms / sizeof ms[0], ok = 0, bad = 0;
  sy_image_limits lim = {.max_pixels = 1 << 20, .max_side = 4096};
  for (int it = 0; it < 7000; it++) {
    const mb *m = &ms[it % n];
    unsigned char *p = malloc(m->len);
    memcpy(p, m->b, m->len);
    int flips = 1 + (int)(next_rand() % 8);
    for (int f = 0; f < flips; f++) {
      size_t at = next_rand() % m->len;
      /* half the flips hit the first 64 bytes, where the headers are */
      if (next_rand() & 1) at %= m->len < 64 ? m->len : 64;
      p[at] ^= (unsigned char)(1u << (next_rand() % 8));
    }
    if (it % n < 2 && next_rand() % 4) png_fix_crcs(p, m->len);
    size_t len = next_rand() % 4 == 0 ? next_rand() % m->len : m->len;
    sy_image img;
    if (sy_image_decode(p, len, &lim, &img, err, sizeof err) == 0) {
      assert_true(img.w > 0 && img.h > 0 && (uint64_t)img.w * img.h <= lim.max_pixels);
      volatile unsigned sum = 0;
      for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++) sum += img.rgb[i]; /* all readable */
      sy_image_free(&img);
      ok++;
    } else {
      assert_null(img.rgb);
      bad++;
    }
    free(p);
  }
  assert_true(ok > 0 && bad > 0);
  for (int i = 0; i < n; i++) free(ms[i].b);
}

/* ---- files in a directory ------------------------------------------------------------------- */

static void write_file(const char *path, const mb *m) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (m->len) assert_int_equal(fwrite(m->b, 1, m->len, f), m->len);
  fclose(f);
}

static void test_paths(void **st) {
  char root[] = "/tmp/sy_image_XXXXXX";
  assert_non_null(mkdtemp(root));
  char dir[256], other[256], path[700], url[600];
  snprintf(dir, sizeof dir, "%s/allowed", root);
  snprintf(other, sizeof other, "%s/other", root);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(mkdir(other, 0700), 0);
  mb m = png_rgb(0);
  snprintf(path, sizeof path, "%s/img.png", dir);
  write_file(path, &m);
  snprintf(path, sizeof path, "%s/sub dir", dir);
  assert_int_equal(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/sub dir/b.png", dir);
  write_file(path, &m);
  snprintf(path, sizeof path, "%s/secret.png", other);
  write_file(path, &m);
  sy_image img;

  /* accepted: relative, absolute, file:// (percent-decoded), localhost, a symlink inside */
  assert_int_equal(dec_url("img.png", dir, NULL, &img), 0);
  check_pattern(&img, 0);
  sy_image_free(&img);
  snprintf(url, sizeof url, "%s/img.png", dir);
  assert_int_equal(dec_url(url, dir, NULL, &img), 0);
  sy_image_free(&img);
  snprintf(url, sizeof url, "file://%s/sub%%20dir/b.png", dir);
  assert_int_equal(dec_url(url, dir, NULL, &img), 0);
  sy_image_free(&img);
  snprintf(url, sizeof url, "file://localhost%s/img.png", dir);
  assert_int_equal(dec_url(url, dir, NULL, &img), 0);
  sy_image_free(&img);
  snprintf(path, sizeof path, "%s/link.png", dir);
  assert_int_equal(symlink("img.png", path), 0);
  assert_int_equal(dec_url("link.png", dir, NULL, &img), 0);
  sy_image_free(&img);
  assert_int_equal(dec_url("sub dir/../img.png", dir, NULL, &img), 0);
  sy_image_free(&img);

  /* refused */
  expect_err("../other/secret.png", dir, NULL, "not found inside the allowed directory");
  snprintf(url, sizeof url, "%s/../other/secret.png", dir);
  expect_err(url, dir, NULL, "not found inside the allowed directory");
  snprintf(url, sizeof url, "%s/secret.png", other);
  expect_err(url, dir, NULL, "not found inside the allowed directory");
  snprintf(url, sizeof url, "file://%s/secret.png", other);
  expect_err(url, dir, NULL, "not found inside the allowed directory");
  snprintf(url, sizeof url, "file://%s/%%2e%%2e/other/secret.png", dir);
  expect_err(url, dir, NULL, "not found inside the allowed directory");
  snprintf(path, sizeof path, "%s/escape.png", dir);
  snprintf(url, sizeof url, "%s/secret.png", other);
  assert_int_equal(symlink(url, path), 0);
  expect_err("escape.png", dir, NULL, "not found inside the allowed directory");
  snprintf(path, sizeof path, "%s/escdir", dir);
  assert_int_equal(symlink(other, path), 0);
  expect_err("escdir/secret.png", dir, NULL, "not found inside the allowed directory");
  snprintf(url, sizeof url, "%s/../allowed_not", dir); /* a sibling sharing the prefix */
  assert_int_equal(mkdir(url, 0700), 0);
  snprintf(path, sizeof path, "%s/x.png", url);
  write_file(path, &m);
  expect_err("../allowed_not/x.png", dir, NULL, "not found inside the allowed directory");
  expect_err("missing.png", dir, NULL, "not found inside the allowed directory");
  /* no oracle: a file that exists outside reads the same as one that does not */
  char e1[256];
  snprintf(url, sizeof url, "%s/secret.png", other);
  expect_err(url, dir, NULL, NULL);
  snprintf(e1, sizeof e1, "%s", err);
  snprintf(url, sizeof url, "%s/nothing-here.png", other);
  expect_err(url, dir, NULL, NULL);
  assert_string_equal(e1, err);
  expect_err("sub dir", dir, NULL, "not a regular file");
  expect_err(".", dir, NULL, "not found inside the allowed directory"); /* the directory itself */
  snprintf(path, sizeof path, "%s/fifo", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  expect_err("fifo", dir, NULL, "not a regular file");
  expect_err("file:img.png", dir, NULL, "file:///");
  expect_err("file://img.png", dir, NULL, "file:///");
  snprintf(url, sizeof url, "file://%s/img%%00.png", dir);
  expect_err(url, dir, NULL, "escape");
  snprintf(url, sizeof url, "file://%s/img%%2.png", dir);
  expect_err(url, dir, NULL, "escape");
  expect_err("img.png", "/nonexistent/dir", NULL, "directory");
  char nul[] = "img.png\0../../etc/passwd";
  assert_int_equal(sy_image_decode_url(nul, sizeof nul - 1, dir, NULL, &img, err, sizeof err), -1);
  assert_non_null(strstr(err, "NUL"));
  sy_image_limits small = {.max_bytes = 10};
  expect_err("img.png", dir, &small, "larger than");
  snprintf(path, sizeof path, "%s/empty.png", dir);
  mb empty = {0};
  write_file(path, &empty);
  expect_err("empty.png", dir, NULL, "empty");
  snprintf(path, sizeof path, "%s/text.png", dir);
  mb text = {(unsigned char *)"not an image", 12, 0};
  write_file(path, &text);
  expect_err("text.png", dir, NULL, "unrecognised");
  free(m.b);

  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  assert_int_equal(system(cmd), 0);
}

/* sy_base64_encode against known vectors (RFC 4648) and back through sy_base64_decode. */
static void test_base64_encode(void **state) {
  (void)state;
  static const char *const vec[][2] = {{"", ""},
                                       {"f", "Zg=="},
                                       {"fo", "Zm8="},
                                       {"foo", "Zm9v"},
                                       {"foob", "Zm9vYg=="},
                                       {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
  for (size_t k = 0; k < sizeof vec / sizeof *vec; k++) {
    char *e = sy_base64_encode(vec[k][0], strlen(vec[k][0]));
    assert_string_equal(e, vec[k][1]);
    unsigned char *d = NULL;
    size_t n = 0;
    char why[128];
    assert_int_equal(sy_base64_decode(e, strlen(e), 64, &d, &n, why, sizeof why), 0);
    assert_int_equal(n, strlen(vec[k][0]));
    assert_memory_equal(d, vec[k][0], n);
    free(d);
    free(e);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_png_rgb),    cmocka_unit_test(test_png_rgba_16),
      cmocka_unit_test(test_png_gray),   cmocka_unit_test(test_png_palette),
      cmocka_unit_test(test_jpeg),       cmocka_unit_test(test_jpeg_cmyk),
      cmocka_unit_test(test_webp),       cmocka_unit_test(test_url_forms),
      cmocka_unit_test(test_url_errors), cmocka_unit_test(test_limits),
      cmocka_unit_test(test_truncated),  cmocka_unit_test(test_fuzz),
      cmocka_unit_test(test_paths),      cmocka_unit_test(test_base64_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

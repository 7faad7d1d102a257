/* image_bench.c — what a vision request's image costs the daemon before any model runs: a chat
 * request body with one multi-megabyte base64 data URL goes through jansson (parse, find the
 * url), our base64 decoder, and the PNG/JPEG/WebP decoder to RGB. Each stage is timed on its
 * own (median of --runs). The images are made here: a noisy photo-like gradient, so that the
 * files are as large as real photographs of that size.
 *   make build/bin/image_bench && build/bin/image_bench [--runs N] [--width W --height H] */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
#include <jpeglib.h>
#include <png.h>
#include <webp/encode.h>
/* clang-format on */

#include "buf.h"
#include "clock.h"
#include "lib.h"
#include "media/base64.h"
#include "media/image.h"

static void mb_put(sy_buf *m, const void *p, size_t n) {
  if (sy_buf_append(m, p, n) != 0) abort();
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)rng;
}

static unsigned char *make_pixels(int w, int h) {
  unsigned char *px = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        int v = (x * 255 / w + y * 255 / h) / 2 + c * 40 + (int)(rnd() % 24) - 12;
        px[((size_t)y * w + x) * 3 + c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
  return px;
}

static void png_write_cb(png_structp png, png_bytep d, size_t n) {
  mb_put(png_get_io_ptr(png), d, n);
}
static void png_flush_cb(png_structp png) { (void)png; }

static sy_buf enc_png(const unsigned char *px, int w, int h) {
  sy_buf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &m, png_write_cb, png_flush_cb);
  png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)px + (size_t)y * w * 3);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return m;
}

static sy_buf enc_jpeg(const unsigned char *px, int w, int h) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  unsigned char *out = NULL;
  unsigned long outlen = 0;
  jpeg_mem_dest(&c, &out, &outlen);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 92, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  sy_buf m = {0};
  mb_put(&m, out, outlen);
  free(out);
  return m;
}

static sy_buf enc_webp(const unsigned char *px, int w, int h) {
  uint8_t *o = NULL;
  size_t n = WebPEncodeRGB(px, w, h, w * 3, 90, &o);
  sy_buf m = {0};
  mb_put(&m, o, n);
  WebPFree(o);
  return m;
}

static void bench_one(const char *name, const char *mime, const char *wrong, const sy_buf *file,
                      int runs) {
  const unsigned char *data = (const unsigned char *)file->data;
  char *e = sy_base64_encode(data, file->len);
  if (!e) abort();
  size_t elen = strlen(e);
  /* the body a client sends: one user message with a text part and an image part */
  size_t cap = elen + 512;
  char *body = malloc(cap);
  int blen = snprintf(body, cap,
                      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"text\",\"text\":\"What is in this image?\"},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:%s;base64,%s\"}}]}]}",
                      mime, e);
  /* the same base64 declared as another type: the decoder runs base64 in full, then refuses
   * at the magic bytes, which times base64 alone */
  size_t wlen = strlen(wrong) + elen + 16;
  char *wrong_url = malloc(wlen);
  snprintf(wrong_url, wlen, "data:%s;base64,%s", wrong, e);

  double t_json[64], t_b64[64], t_dec[64], t_url[64];
  char err[256];
  uint32_t w = 0, h = 0;
  for (int r = 0; r < runs; r++) {
    double t0 = sy_mono_s();
    json_error_t je;
    json_t *root = json_loadb(body, (size_t)blen, 0, &je);
    json_t *msgs = json_object_get(root, "messages");
    json_t *content = json_object_get(json_array_get(msgs, 0), "content");
    json_t *part = json_object_get(json_array_get(content, 1), "image_url");
    json_t *url = json_object_get(part, "url");
    if (!url || !json_is_string(url)) {
      fprintf(stderr, "json: %s\n", je.text);
      exit(1);
    }
    double t1 = sy_mono_s();
    sy_image img;
    if (sy_image_decode_url(json_string_value(url), json_string_length(url), NULL, NULL, &img, err,
                            sizeof err) != 0) {
      fprintf(stderr, "%s: %s\n", name, err);
      exit(1);
    }
    double t2 = sy_mono_s();
    w = img.w, h = img.h;
    sy_image_free(&img);
    json_decref(root);
    t_json[r] = t1 - t0;
    t_url[r] = t2 - t1;

    double t3 = sy_mono_s();
    if (sy_image_decode_url(wrong_url, strlen(wrong_url), NULL, NULL, &img, err, sizeof err) == 0) {
      fprintf(stderr, "mismatch not detected\n");
      exit(1);
    }
    double t4 = sy_mono_s();
    if (sy_image_decode(data, file->len, NULL, &img, err, sizeof err) != 0) exit(1);
    double t5 = sy_mono_s();
    sy_image_free(&img);
    t_b64[r] = t4 - t3;
    t_dec[r] = t5 - t4;
  }
  double mj = bench_median(t_json, runs), mb64 = bench_median(t_b64, runs),
         md = bench_median(t_dec, runs), mu = bench_median(t_url, runs);
  printf(
      "| %-5s | %ux%u | %.2f MB | %.2f MB | %7.1f ms (%4.0f MB/s) | %6.1f ms (%4.0f MB/s) | "
      "%7.1f ms | %7.1f ms |\n",
      name, w, h, file->len / 1e6, blen / 1e6, mj * 1e3, blen / mj / 1e6, mb64 * 1e3,
      elen / mb64 / 1e6, md * 1e3, (mj + mu) * 1e3);
  free(e);
  free(body);
  free(wrong_url);
}

int main(int argc, char **argv) {
  int runs = 7, w = 3000, h = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--runs"))
      runs = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--width"))
      w = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--height"))
      h = atoi(argv[i + 1]);
  }
  if (runs < 1 || runs > 64 || w < 1 || h < 1) {
    fprintf(stderr, "usage: image_bench [--runs 1..64] [--width W] [--height H]\n");
    return 2;
  }
  unsigned char *px = make_pixels(w, h);
  sy_buf png = enc_png(px, w, h), jpg = enc_jpeg(px, w, h), webp = enc_webp(px, w, h);
  free(px);
  printf("median of %d runs; body = a chat request with the image as a base64 data URL\n\n", runs);
  printf("| format | size | file | body | jansson parse | base64 | decode to RGB | total |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  bench_one("PNG", "image/png", "image/webp", &png, runs);
  bench_one("JPEG", "image/jpeg", "image/png", &jpg, runs);
  bench_one("WebP", "image/webp", "image/png", &webp, runs);
  sy_buf_free(&png);
  sy_buf_free(&jpg);
  sy_buf_free(&webp);
  return 0;
}

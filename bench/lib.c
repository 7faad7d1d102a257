/* lib.c — see lib.h. */
#include "lib.h"

#include <stdlib.h>

#include "buf.h"

int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

size_t bench_to_buf(char *p, size_t sz, size_t n, void *ud) {
  return sy_buf_append(ud, p, sz * n) == 0 ? sz * n : 0;
}

void bench_post_json(CURL *c, const char *url, const char *body, struct curl_slist *hl,
                     curl_write_callback on_body, void *ud) {
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, ud);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
}

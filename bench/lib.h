/* lib.h — C helpers the bench programs share (bench, gpucheck-load, bench-speech, bench-voice,
 * image_bench; bench/lib.sh is the scripts'): the median of a sample, a curl body sink into an
 * sy_buf (src/common/buf.h), and a JSON POST set up the same way everywhere. */
#ifndef BENCH_LIB_H
#define BENCH_LIB_H

#include <curl/curl.h>
#include <stddef.h>

/* qsort's comparison for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
/* Sorts v (n >= 1) and returns its median: the middle value, or the mean of the two middle ones. */
double bench_median(double *v, int n);
/* CURLOPT_WRITEFUNCTION appending to the sy_buf given as CURLOPT_WRITEDATA; a buffer at its limit
 * (or out of memory) ends the transfer. */
size_t bench_to_buf(char *p, size_t sz, size_t n, void *ud);
/* Set c up to POST body (JSON) to url with the headers hl (the caller's: Content-Type:
 * application/json at least; it frees them after the transfer), the response body going to
 * on_body(ud), and no signals (the programs run requests in threads). */
void bench_post_json(CURL *c, const char *url, const char *body, struct curl_slist *hl,
                     curl_write_callback on_body, void *ud);

#endif

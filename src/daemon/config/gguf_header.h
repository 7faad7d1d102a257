/* gguf_header.h — a bounded reader of GGUF file headers (metadata only, no tensors), so the daemon
 * can discover capabilities without linking an engine. The file is hostile: every length and count
 * is checked against the file size and fixed limits before use; a bad file is an error, never a
 * crash or a huge allocation. Prefix ghdr_, to stay out of ggml's gguf_* namespace. */
#ifndef SY_GGUF_HEADER_H
#define SY_GGUF_HEADER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ghdr_info {
  unsigned version;
  long long n_tensors;
  long long n_kv;
  char arch[64];              /* general.architecture ("" if absent) */
  char name[128];             /* general.name ("" if absent) */
  long long context_length;   /* <arch>.context_length, 0 if absent */
  long long embedding_length; /* <arch>.embedding_length, 0 if absent */
  long long block_count;      /* <arch>.block_count, 0 if absent */
  int pooling_type; /* <arch>.pooling_type, -1 if absent (0 none, 1 mean, 2 cls, 3 last, 4 rank) */
  bool has_chat_template; /* tokenizer.chat_template present and non-empty */
  bool is_mmproj;         /* general.type == "mmproj" or clip.* keys */
  bool is_adapter;        /* general.type == "adapter" (a LoRA or similar, not a model) */
  int has_vision_encoder; /* clip.has_vision_encoder: 1, 0, or -1 when absent */
  int has_audio_encoder;  /* clip.has_audio_encoder: 1, 0, or -1 when absent */
  int file_type;          /* general.file_type, -1 if absent */
  bool gen_audio; /* mmproj: clip.has_gen_audio_encoder (an audio generator: text to speech) */
  char projector_type[32]; /* mmproj: clip.projector_type or clip.vision.projector_type ("" if
                              absent; cut to 31 bytes) */
  long long expert_count;  /* <arch>.expert_count, 0 if absent (a model without experts) */
  /* From the tensor infos, best effort (a tensor table this reader cannot follow leaves them
   * unknown, never fails the read): the bytes of the experts' tensors (names with
   * ".ffn_{up,down,gate,gate_up}_exps" / "_chexps", as llama.cpp's --cpu-moe matches), -1 when
   * unknown; and how many layers ("blk.N.") have any, 0 when unknown or none. */
  long long expert_bytes;
  int expert_layers;
} ghdr_info;

/* Read the header of the GGUF at path (regular files only): the key/value section, then the
 * tensor infos (names, shapes, offsets; never the data) for the experts' size. Returns 0 on
 * success; -1 with a one-line reason in err, without the path ("not a GGUF file: bad magic (offset
 * 4)"). Allocates one 64 KiB read window and an 8 KiB bitmap; time is linear in the header's size.
 * Thread safe. */
int ghdr_read_info(const char *path, ghdr_info *out, char *err, size_t errlen);
/* The same over a buffer in memory (for tests and fuzzing). */
int ghdr_parse_info(const unsigned char *buf, size_t len, ghdr_info *out, char *err, size_t errlen);
/* The chat template (tokenizer.chat_template) of the GGUF at path into *tmpl: malloc'd,
 * NUL-terminated, the caller frees it; NULL when the file has none or one over 1 MiB. 0, or -1
 * with err as ghdr_read_info (then *tmpl is NULL). Thread safe. */
int ghdr_read_template(const char *path, char **tmpl, char *err, size_t errlen);
/* The same over a buffer in memory (for tests and fuzzing). */
int ghdr_parse_template(const unsigned char *buf, size_t len, char **tmpl, char *err,
                        size_t errlen);

#endif

# Makefile — Switchyard's front door.
#   make            install what is missing (apt, npm), build the engines (cached) and our binaries
#   make run        build, then serve on 127.0.0.1:8080 (CONFIG=..., MODELS=...)
#   make install    build, then install (PREFIX=/usr/local, DESTDIR=) with the systemd unit; make uninstall
#   make test       build normally and with ASan+UBSan, run unit, integration and compat tests
#   make layers     check the daemon's include layering (tests/layers.sh; part of make test)
#   make browser    the status page in headless Chromium (tests/browser; part of make test)
#   make bench      switchyard vs llama-server on the same model (see docs/PERFORMANCE.md)
#   make bench-agent  the prompt cache in agent conversations vs llama-server's (TTFT per turn)
#   make bench-long-chat  a conversation of thousands of messages: rendering + tokenising vs llama-server
#   make bench-omp  the workers' OpenMP wait policy, alone and beside a second busy worker
#   make bench-speech-asr   speech to text: switchyard's whisper worker vs whisper-server
#   make bench-speech       the built-in voice: time to first audio byte, real-time factor
#   make bench-realtime     the Realtime API: end of speech → first audio byte, per stage
#   make bench-tts          neural voices (Pocket-TTS, Qwen3-TTS through mtmd): the same numbers
#   GPU=cpu|cuda|vulkan|hip   engine backend (CUDA_ARCH=90 for one target)
#   AMX=1     keep ggml's Intel AMX kernels (off by default: they crash, see deps/engines.sh)
SHELL := /bin/bash
GPU ?= cpu
CUDA_ARCH ?=
AMX ?= 0
# the scripts make runs (tests/run.sh, bench/*.sh) ask deps/engines.sh for the same engine build
export GPU CUDA_ARCH AMX
BUILD ?= build
SAN ?=
HOST ?= 127.0.0.1
PORT ?= 8080
MODELS ?= models
CONFIG ?=

ENGINES := $(shell GPU=$(GPU) CUDA_ARCH=$(CUDA_ARCH) AMX=$(AMX) deps/engines.sh print-prefix)
ENGINES_DONE := $(dir $(ENGINES)).done

CC := gcc
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -Isrc/common -Isrc/chat -Isrc/daemon -MMD -MP
LDFLAGS :=
ifeq ($(SAN),1)
  CFLAGS += -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1
  LDFLAGS += -fsanitize=address,undefined,float-cast-overflow
endif

DAEMON_LIBS := -lmicrohttpd -lwslay -ljansson -lyaml -lcurl -lcrypto -lpng -ljpeg -lwebp -lwebpdemux -lsndfile -lmpg123 -lvorbisfile -lvorbis -logg -lsoxr -lpthread -lm -ldl
ENGINE_INC := -I$(ENGINES)/include
# The GPU backend's archive goes after libggml.a (whose registry calls ggml_backend_<gpu>_reg) and
# before libggml-base.a (which it uses): static archives are scanned once, in order.
GPU_LIB :=
GPU_SYSLIBS :=
ifeq ($(GPU),cuda)
  CUDA_HOME ?= /usr/local/cuda
  GPU_LIB := libggml-cuda.a
  GPU_SYSLIBS := -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib64/stubs -lcudart -lcublas -lcublasLt -lcuda -ldl -lrt
endif
ifeq ($(GPU),vulkan)
  GPU_LIB := libggml-vulkan.a
  GPU_SYSLIBS := -lvulkan
endif
ifeq ($(GPU),hip)
  ROCM_PATH ?= /opt/rocm
  GPU_LIB := libggml-hip.a
  GPU_SYSLIBS := -L$(ROCM_PATH)/lib -lamdhip64 -lhipblas -lrocblas
endif
# ggml's RPC backend (deps/engines.sh builds it in: GGML_RPC) is registered by libggml.a too, so it
# goes in the same place as a GPU backend's archive.
RPC_LIB := libggml-rpc.a
ENGINE_LIBS := $(addprefix $(ENGINES)/lib/,libmtmd.a libllama.a libggml.a $(GPU_LIB) $(RPC_LIB) libggml-cpu.a \
                 libggml-base.a libvendor-hash.a) $(GPU_SYSLIBS) -lstdc++ -fopenmp -lm -lpthread -ljansson

COMMON_SRC := $(wildcard src/common/*.c)
CHAT_SRC := $(wildcard src/chat/*.c)
# the daemon: main.c at the root, the CLI verbs in cli/, one folder (wing) per concern (docs/ARCHITECTURE.md)
DAEMON_SRC := $(wildcard src/daemon/*.c src/daemon/*/*.c)
LLAMA_SRC := $(wildcard src/workers/llama/*.c)
WHISPER_SRC := $(wildcard src/workers/whisper/*.c)
ESPEAK_SRC := $(wildcard src/workers/espeak/*.c)
MKMODEL_SRC := $(wildcard tools/mkmodel/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
ITEST_SRC := $(wildcard tests/integration/*.c)
BENCH_SRC := $(filter-out bench/image_bench.c,$(wildcard bench/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
CHAT_OBJ := $(call obj,$(CHAT_SRC))
# the status page's files (web/ui/), compiled into the daemon as a C table (tools/ui-embed)
UI_ASSETS := $(sort $(wildcard web/ui/*))
UI_GEN := $(BUILD)/gen/ui_assets.c
DAEMON_OBJ := $(call obj,$(DAEMON_SRC) $(UI_GEN))
DAEMON_LIB_OBJ := $(filter-out %/main.o,$(DAEMON_OBJ))
BIN := $(BUILD)/bin
UNIT_BINS := $(patsubst tests/unit/%.c,$(BIN)/unit/%,$(UNIT_SRC))

PROGRAMS := $(BIN)/switchyard $(BIN)/switchyard-llama $(BIN)/mkmodel $(BIN)/llama-fit-params \
            $(BIN)/ggml-rpc-server $(BIN)/sy-jinja $(BIN)/switchyard-whisper $(BIN)/mkwhisper $(BIN)/switchyard-espeak
.PHONY: all deps engines run install uninstall test test-only itest unit layers browser bench bench-doors bench-long-chat bench-mixed bench-agent bench-omp bench-speech bench-speech-asr bench-router bench-voice bench-realtime bench-tts bench-gpu-check clean format format-check
all: deps engines $(PROGRAMS)

deps:
	@scripts/install-deps.sh

engines: deps $(ENGINES_DONE)
$(ENGINES_DONE):
	GPU=$(GPU) CUDA_ARCH=$(CUDA_ARCH) AMX=$(AMX) deps/engines.sh >/dev/null

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter src/workers/% tools/% bench/% tests/grammar/% tests/unit/test_tok.c,$<),$(ENGINE_INC)) -c $< -o $@

$(BIN)/ui-embed: $(call obj,tools/ui-embed/main.c src/common/hash.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@

$(UI_GEN): $(UI_ASSETS) $(BIN)/ui-embed
	@mkdir -p $(dir $@)
	$(BIN)/ui-embed -o $@ $(UI_ASSETS)

$(BIN)/switchyard: $(DAEMON_OBJ) $(CHAT_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

$(BIN)/switchyard-llama: $(call obj,$(LLAMA_SRC)) $(CHAT_OBJ) $(COMMON_OBJ) | $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(ENGINE_LIBS)

# whisper.cpp (built on the same ggml): libwhisper, libparakeet (Parakeet-TDT) plus the ggml
# libraries of ENGINE_LIBS. An engine cache from before Parakeet support gets libparakeet added.
PARAKEET_LIB := $(ENGINES)/lib/libparakeet.a
$(PARAKEET_LIB): | $(ENGINES_DONE)
	GPU=$(GPU) CUDA_ARCH=$(CUDA_ARCH) AMX=$(AMX) deps/engines.sh >/dev/null
WHISPER_LIBS := $(ENGINES)/lib/libwhisper.a $(PARAKEET_LIB) \
  $(filter-out %/libmtmd.a %/libllama.a %/libvendor-hash.a,$(ENGINE_LIBS))
$(BIN)/switchyard-whisper: $(call obj,$(WHISPER_SRC)) $(COMMON_OBJ) | $(ENGINES_DONE) $(PARAKEET_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(WHISPER_LIBS)

# random-weight whisper.cpp ggml models (tools/mkwhisper), for tests that need no ../shared
$(BIN)/mkwhisper: $(call obj,tools/mkwhisper/main.c src/common/argnum.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lm

# the built-in voice: espeak-ng (GPL-3.0+) is linked into this worker only, never the daemon
$(BIN)/switchyard-espeak: $(call obj,$(ESPEAK_SRC)) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lespeak-ng -ljansson -lpthread -lm

# llama.cpp's memory estimator, run by the daemon as a probe (see src/daemon/sched/footprint.h)
$(BIN)/llama-fit-params: $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	cp $(ENGINES)/bin/llama-fit-params $@

# ggml's RPC server, run by `switchyard rpc-server` from the same folder (src/daemon/cli/rpc_server.c)
$(BIN)/ggml-rpc-server: $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	cp $(ENGINES)/bin/ggml-rpc-server $@

$(BIN)/mkmodel: $(call obj,$(MKMODEL_SRC)) $(COMMON_OBJ) | $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(ENGINE_LIBS)

$(BIN)/sy-jinja: $(call obj,tools/sy-jinja/main.c) $(CHAT_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -ljansson -lm

$(BIN)/unit/%: $(BUILD)/obj/tests/unit/%.o $(DAEMON_LIB_OBJ) $(CHAT_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS) -lcmocka

# a worker's pure decisions, tested without an engine
$(BIN)/unit/test_slot_pick: $(BUILD)/obj/tests/unit/test_slot_pick.o $(call obj,src/workers/llama/slot_pick.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcmocka
$(BIN)/unit/test_audio_check: $(BUILD)/obj/tests/unit/test_audio_check.o $(call obj,src/workers/llama/audio_check.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcmocka
$(BIN)/unit/test_prompt_cache: $(BUILD)/obj/tests/unit/test_prompt_cache.o \
    $(call obj,src/workers/llama/prompt_cache.c src/workers/llama/slot_pick.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcmocka
$(BIN)/unit/test_prompt_disk: $(BUILD)/obj/tests/unit/test_prompt_disk.o \
    $(call obj,src/workers/llama/prompt_disk.c src/workers/llama/slot_pick.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcmocka -ljansson -lpthread

# the worker's tokenising in pieces against llama.cpp's own, on the engine's vocabularies
$(BIN)/unit/test_tok: $(BUILD)/obj/tests/unit/test_tok.o $(call obj,src/workers/llama/tok.c) \
    | $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcmocka $(ENGINE_LIBS)

# JSON Schema grammars (src/chat/json_schema.c) run through llama.cpp's grammar sampler
$(BIN)/grammar-check: $(call obj,tests/grammar/check.c) $(CHAT_OBJ) $(COMMON_OBJ) | $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(ENGINE_LIBS)

# (the audio module decodes what /v1/audio/speech sends)
$(BIN)/itest: $(call obj,$(ITEST_SRC) $(wildcard src/daemon/media/audio*.c)) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

$(BIN)/bench: $(call obj,$(BENCH_SRC)) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson -lpthread -lm

# Vision input cost: jansson + base64 + image decode (docs/PERFORMANCE.md, "Vision input")
$(BIN)/image_bench: $(call obj,bench/image_bench.c bench/lib.c src/daemon/media/image.c \
                               src/daemon/media/base64.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

# Test-only: renders a template with llama.cpp's own Jinja engine, the reference sy-jinja is
# diffed against (tests/jinja/diff.sh). C++ because it drives llama.cpp's C++ code. Only
# common/jinja + json (and ggml_abort from ggml-base) get linked, whatever GPU is.
LLAMA_SRC_DIR := $(dir $(ENGINES))src/llama.cpp
$(BIN)/jinja-oracle: tests/jinja/oracle.cpp | $(ENGINES_DONE)
	@mkdir -p $(dir $@)
	g++ -std=c++17 -O1 -I$(LLAMA_SRC_DIR)/common $< -o $@ \
	  $(addprefix $(ENGINES)/lib/,libllama-common.a libllama-common-base.a libggml-base.a) \
	  -fopenmp -lm -lpthread

# Object files of the engine-linked programs need the engine headers to exist first.
$(call obj,$(LLAMA_SRC) $(WHISPER_SRC) $(MKMODEL_SRC) $(BENCH_SRC) tests/grammar/check.c): | $(ENGINES_DONE)
$(call obj,$(WHISPER_SRC)): | $(PARAKEET_LIB)

run: all
	@mkdir -p $(MODELS)
	@if [ -z "$(CONFIG)" ] && ! ls $(MODELS)/*.gguf >/dev/null 2>&1; then \
	  echo "make run: no *.gguf in $(MODELS)/; making two tiny random-weight demo models there" \
	       "(gibberish output; put real GGUF files in $(MODELS)/ or pass CONFIG=file.yaml)"; \
	  SWITCHYARD_VOCAB_DIR=$(ENGINES)/share/vocab $(BIN)/mkmodel --preset tiny-qwen2 -o $(MODELS)/demo-chat.gguf && \
	  SWITCHYARD_VOCAB_DIR=$(ENGINES)/share/vocab $(BIN)/mkmodel --preset tiny-bert -o $(MODELS)/demo-embed.gguf; \
	fi
	$(BIN)/switchyard --host $(HOST) --port $(PORT) --models-dir $(MODELS) \
	  $(if $(CONFIG),--config $(CONFIG)) --worker-dir $(BIN)

# make install: the daemon in bin/, the workers and tools in libexec/switchyard/ (the daemon looks
# there, ../libexec/switchyard from itself), docs, switchyard.service and its system user
# (dist/systemd/), and the example config as SYSCONFDIR/switchyard/switchyard.yaml unless one is
# there. The engines are linked into the workers statically: nothing else to install. With no
# DESTDIR on a box running systemd it also creates the user and reloads systemd. Tested by
# tests/install.sh. README.md "Run it as a service".
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/switchyard
DOCDIR ?= $(PREFIX)/share/doc/switchyard
SYSCONFDIR ?= $(if $(filter /usr /usr/local,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR ?= $(PREFIX)/lib/systemd/system
# systemd-sysusers reads /usr/lib/sysusers.d and /etc/sysusers.d, not /usr/local/lib
SYSUSERSDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/sysusers.d,$(SYSCONFDIR)/sysusers.d)
INSTALL_LIBEXEC := switchyard-llama switchyard-whisper switchyard-espeak llama-fit-params \
                   mkmodel mkwhisper sy-jinja
INSTALL_DOCS := $(wildcard docs/*.md) # under DOCDIR/docs/, so that README.md's links hold
INSTALL_IMGS := $(wildcard docs/img/*.png) # the README's screenshots, under DOCDIR/docs/img/
INSTALL_SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
                    -e 's|@DOCDIR@|$(DOCDIR)|g'
# `make && sudo make install`: install builds only when a program is missing (under sudo HOME, and
# so the engine cache deps/engines.sh finds, may differ: building would make the engines again)
install: $(if $(filter-out $(wildcard $(PROGRAMS)),$(PROGRAMS)),all)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR)/docs \
	  $(DESTDIR)$(SYSCONFDIR)/switchyard $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 755 $(BIN)/switchyard $(DESTDIR)$(BINDIR)/switchyard
	install -m 755 $(addprefix $(BIN)/,$(INSTALL_LIBEXEC)) $(DESTDIR)$(LIBEXECDIR)/
	install -m 644 README.md LICENSE $(DESTDIR)$(DOCDIR)/
	install -m 644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/docs/
	$(if $(INSTALL_IMGS),install -d $(DESTDIR)$(DOCDIR)/docs/img && install -m 644 $(INSTALL_IMGS) $(DESTDIR)$(DOCDIR)/docs/img/)
	$(INSTALL_SUBST) dist/config/switchyard.yaml.in >$(DESTDIR)$(DOCDIR)/switchyard.yaml.example
	$(INSTALL_SUBST) dist/systemd/switchyard.service.in >$(DESTDIR)$(UNITDIR)/switchyard.service
	chmod 644 $(DESTDIR)$(DOCDIR)/switchyard.yaml.example $(DESTDIR)$(UNITDIR)/switchyard.service
	install -m 644 dist/systemd/switchyard.sysusers $(DESTDIR)$(SYSUSERSDIR)/switchyard.conf
	@cfg=$(DESTDIR)$(SYSCONFDIR)/switchyard/switchyard.yaml; if [ -e "$$cfg" ]; then \
	  echo "install: keeping $$cfg (the example is $(DOCDIR)/switchyard.yaml.example)"; \
	else install -m 644 $(DESTDIR)$(DOCDIR)/switchyard.yaml.example "$$cfg"; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	  systemd-sysusers $(SYSUSERSDIR)/switchyard.conf && systemctl daemon-reload && \
	  echo "install: now sudo systemctl enable --now switchyard"; fi

# removes what install put there; the config only while it is still the unchanged example
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/switchyard $(addprefix $(DESTDIR)$(LIBEXECDIR)/,$(INSTALL_LIBEXEC)) \
	  $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/LICENSE $(addprefix $(DESTDIR)$(DOCDIR)/,$(INSTALL_DOCS)) \
	  $(addprefix $(DESTDIR)$(DOCDIR)/,$(INSTALL_IMGS)) $(DESTDIR)$(UNITDIR)/switchyard.service $(DESTDIR)$(SYSUSERSDIR)/switchyard.conf
	@cfg=$(DESTDIR)$(SYSCONFDIR)/switchyard/switchyard.yaml; \
	if [ -e "$$cfg" ] && ! cmp -s "$$cfg" $(DESTDIR)$(DOCDIR)/switchyard.yaml.example; then \
	  echo "uninstall: keeping $$cfg (changed; remove it yourself)"; else rm -f "$$cfg"; fi
	rm -f $(DESTDIR)$(DOCDIR)/switchyard.yaml.example
	rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR)/docs/img $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/switchyard 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

unit: $(UNIT_BINS)

# the daemon's wings: nothing below api/ includes an api/ header (a grep; also a suite of tests/run.sh)
layers:
	@tests/layers.sh

# The whole suite: normal build, then our code again under ASan+UBSan (engines built normally).
test: all
	$(MAKE) --no-print-directory BUILD=build-asan SAN=1 $(addprefix build-asan/bin/,switchyard switchyard-llama switchyard-whisper llama-fit-params ggml-rpc-server sy-jinja switchyard-espeak) \
	  $(patsubst $(BIN)/%,build-asan/bin/%,$(UNIT_BINS))
	$(MAKE) --no-print-directory $(BIN)/itest $(BIN)/grammar-check $(BIN)/jinja-oracle $(UNIT_BINS)
	tests/run.sh

# The integration tests alone, as tests/run.sh runs them (the same models, engines, testdata and
# environment); models missing from $(BUILD)/test-models are made first (tests/models.sh).
# T=NAME runs one test (build/bin/itest --list: "FEATURE TEST" per line) or, when NAME is a
# feature (basics, budget, speech, ...), every test of that feature; without T, all of them.
# ext_whisper skips unless deps/whisper-server.sh has built whisper-server (tests/run.sh does).
itest: all $(BIN)/itest
	@prefix=$$(deps/engines.sh print-prefix) && \
	export SWITCHYARD_VOCAB_DIR="$$prefix/share/vocab" \
	  SY_TEMPLATES_DIR="$$prefix/../src/llama.cpp/models/templates" \
	  SWITCHYARD_STATE_DIR="$(CURDIR)/$(BUILD)/test-state" && \
	rm -rf "$$SWITCHYARD_STATE_DIR" && \
	BIN=$(BIN) tests/models.sh --if-missing $(BUILD)/test-models && \
	td=$${SWITCHYARD_TESTDATA:-$(CURDIR)/../shared/testdata} && \
	if [ -d "$$td" ]; then td="--testdata $$td"; else td=; fi && \
	$(BIN)/itest --daemon $(BIN)/switchyard --models $(BUILD)/test-models --engines "$$prefix" $$td $(if $(T),--only $(T))

# the status page in headless Chromium (tests/browser/run.sh, a suite of `make test`); writes the
# README's screenshot, docs/img/status-page.png
browser: all
	@prefix=$$(deps/engines.sh print-prefix) && \
	export SWITCHYARD_VOCAB_DIR="$$prefix/share/vocab" \
	  SY_TEMPLATES_DIR="$$prefix/../src/llama.cpp/models/templates" && \
	BIN=$(BIN) tests/models.sh --if-missing $(BUILD)/test-models && \
	BIN=$(BIN) tests/browser/run.sh $(CURDIR)/$(BUILD)/test-models

bench: all $(BIN)/bench
	bench/run.sh

bench-mixed: all $(BIN)/bench
	bench/mixed.sh

# the prompt cache under agent conversations, vs llama-server's (docs/PERFORMANCE.md)
bench-agent: all $(BIN)/bench
	bench/agent.sh

# the workers' OpenMP wait policy: decode alone and beside a second worker (docs/PERFORMANCE.md)
bench-omp: all $(BIN)/bench
	bench/omp_policy.sh

# each front door's own time per request (chat, Anthropic messages, Responses); docs/PERFORMANCE.md
bench-doors: all
	bench/doors.sh

# a very long conversation's rendering and tokenising, vs llama-server (docs/PERFORMANCE.md)
bench-long-chat: all
	bench/long_chat.sh

# the router's decision time (classifier on a tiny light model); see docs/PERFORMANCE.md
bench-router: all
	bench/router.sh

# the built-in voice: time to first audio byte and real-time factor (docs/PERFORMANCE.md, "Speech")
$(BIN)/bench-speech: $(call obj,bench/speech/bench_speech.c bench/lib.c src/common/buf.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson

bench-speech: $(BIN)/switchyard $(BIN)/switchyard-espeak $(BIN)/bench-speech
	bench/speech.sh

# neural voices on random-weight models mkmodel writes (docs/PERFORMANCE.md, "Neural speech")
bench-tts: engines $(BIN)/switchyard $(BIN)/switchyard-llama $(BIN)/mkmodel $(BIN)/bench-speech
	bench/tts_neural.sh

# whisper-server is built by the script, from the engine cache's sources, outside the repository
# its audio maker and result table (bench/speech/asr_report.c)
$(BIN)/bench-asr: $(call obj,bench/speech/asr_report.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -ljansson -lm

bench-speech-asr: engines $(BIN)/switchyard $(BIN)/switchyard-whisper $(BIN)/mkwhisper $(BIN)/bench-asr
	bench/speech_asr.sh

# a voice turn (pipeline.c) end to end, split by stage (docs/PERFORMANCE.md, "Voice turn")
$(BIN)/bench-voice: $(call obj,bench/speech/bench_voice.c bench/lib.c src/common/buf.c \
                                  src/daemon/media/base64.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson -lm

bench-voice: $(BIN)/switchyard $(BIN)/switchyard-llama $(BIN)/switchyard-whisper $(BIN)/switchyard-espeak \
             $(BIN)/bench-voice
	bench/voice_turn.sh

# OpenAI's Realtime API (/v1/realtime) turn by turn: end of speech → first audio, per stage
# (docs/PERFORMANCE.md "Realtime"); the client uses the daemon's own WebSocket code
$(BIN)/bench-realtime: $(BUILD)/obj/bench/realtime/bench_realtime.o $(DAEMON_LIB_OBJ) $(CHAT_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(DAEMON_LIBS)

bench-realtime: $(BIN)/switchyard $(BIN)/switchyard-llama $(BIN)/switchyard-whisper \
                $(BIN)/switchyard-espeak $(BIN)/bench-realtime
	bench/realtime.sh

# every C file we track against .clang-format; `make test` runs the check (tests/format.sh)
format:
	tests/format.sh --fix
format-check:
	tests/format.sh

# libFuzzer targets, not part of `make test`: `make fuzz FUZZ_SECONDS=60` builds every
# tests/fuzz/fuzz_<name>.c with clang (ASan + UBSan) into build-fuzz/ and runs each for
# FUZZ_SECONDS on its seeds (tests/fuzz/seeds.sh: tests/fuzz/corpus/fuzz_<name>/, and what
# tests/fuzz/seed_<name>.c writes). The common, chat and daemon sources are built once with clang
# into build-fuzz/libsy.a; a target pulls in only the objects it uses. Findings land in
# build-fuzz/artifacts/ and stop the run.
FUZZ_SECONDS ?= 60
FUZZ_CC := clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g $(FUZZ_SAN) -Isrc/common -Isrc/chat -Isrc/daemon
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_SEEDERS := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/seed_*.c))
FUZZ_LIB_OBJ := $(patsubst %.c,build-fuzz/obj/%.o,$(COMMON_SRC) $(CHAT_SRC) \
                  $(filter-out src/daemon/main.c,$(DAEMON_SRC)) $(UI_GEN))
.PHONY: fuzz
fuzz: $(FUZZ_BINS) $(FUZZ_SEEDERS)
	tests/fuzz/seeds.sh build-fuzz/seeds
	@mkdir -p build-fuzz/artifacts
	@for t in $(FUZZ_BINS); do n=$$(basename $$t); mkdir -p build-fuzz/corpus/$$n; \
	  echo "=== $$n: $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/artifacts/$$n- build-fuzz/corpus/$$n build-fuzz/seeds/$$n \
	    || { echo "=== $$n: FOUND A BUG (build-fuzz/artifacts/)"; exit 1; }; \
	done
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build-fuzz/libsy.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libsy.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build-fuzz/libsy.a -o $@ $(DAEMON_LIBS)
build-fuzz/seed_%: tests/fuzz/seed_%.c build-fuzz/libsy.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< build-fuzz/libsy.a -o $@ $(DAEMON_LIBS)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# scripts/gpu-check.sh: the GPU-truth check (docs/GPU-CHECK.md); --cpu mode here, --gpu on a lent card
$(BIN)/gpucheck-load: $(call obj,bench/gpucheck/load.c bench/lib.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson -lpthread -lm

$(BIN)/gpucheck: $(call obj,bench/gpucheck/check.c) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ -lcurl -ljansson -lpthread -lm

bench-gpu-check: $(BIN)/switchyard $(BIN)/switchyard-llama $(BIN)/switchyard-whisper $(BIN)/llama-fit-params \
                 $(BIN)/mkmodel $(BIN)/mkwhisper $(BIN)/bench $(BIN)/gpucheck-load $(BIN)/gpucheck
	scripts/gpu-check.sh --cpu

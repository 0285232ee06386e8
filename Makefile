# SPDX-License-Identifier: MIT
# glm4v.c - build, demo and tests.  `make run` installs what is missing, builds and runs the demo; `make test`.
CC      ?= gcc
# -ffp-contract=off: no silent a*b+c fusion, so the numbers do not depend on the compiler's mood
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Wno-unused-parameter -fopenmp -ffp-contract=off -fno-fast-math \
           -D_GNU_SOURCE -I/usr/include/stb -I/usr/include/openblas -I. -I$(BUILD)
LDLIBS  += -lpcre2-8 -lcjson -ljpeg -lz -lm -lmicrohttpd -lpthread
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
CFLAGS  += -DGLM4V_GIT_COMMIT=\"$(GIT_COMMIT)\"
# sanitizer flags (make test-asan sets them for its own build directory)
CFLAGS  += $(SANFLAGS)

# Debian packages the build and the tests need
DEB_PKGS = gcc make libopenblas-dev libstb-dev libjpeg62-turbo-dev libpcre2-dev libcjson-dev zlib1g-dev poppler-utils \
           libmicrohttpd-dev curl

LIB_SRCS = util.c safetensors.c checkpoint.c weights.c ops.c ops_bf16.c ops_amx.c ops_amx_emu.c quant.c quant_fp8x.c quant_i8x.c quant_config.c quantize.c tokenizer.c image.c preprocess.c video.c \
           vision.c moe.c model.c dump.c prompt.c boxes.c sampler.c engine.c jinja.c json.c chat_template.c messages.c \
           chat_output.c gguf.c ggml_quants.c gguf_map.c gguf_model.c pdf.c openai.c scorer.c
BUILD    = build
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
# header dependencies: each object's own list, written by the compiler (-MMD) beside it and read back below
DEPFLAGS = -MMD -MP
# the programs (make test-asan builds them into build-asan/); the shell tests take them from $GLM4V / $GLM4V_COMPARE
GLM4V_BIN   = glm4v
COMPARE_BIN = glm4v-compare

TEST_SRCS = $(wildcard tests/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test clean test-realdims test-asan test-valgrind fuzz fuzz-build deps-check lib install

all: $(GLM4V_BIN) $(COMPARE_BIN)

$(BUILD)/%.o: %.c | $(BUILD)/tests
	$(CC) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

# a file's bytes as the body of a C array ("0x3c,0x21,...")
embed_bytes = od -An -v -tx1 $(1) | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'

# the built-in chat template (templates/glm45v.jinja) as a C array, for a model folder without a template
$(BUILD)/builtin_templates.h: templates/glm45v.jinja | $(BUILD)/tests
	{ printf 'static const unsigned char glm45v_jinja[] = {'; $(call embed_bytes,$<); \
	  printf '0};\n'; } > $@.tmp && mv $@.tmp $@
$(BUILD)/chat_template.o: $(BUILD)/builtin_templates.h

# the chat page (webui/) as C arrays webui_<name>_<ext>[] (NUL-terminated), served by `glm4v serve` at / (webui.c)
WEBUI_FILES = webui/index.html webui/style.css webui/boxes.js webui/app.js webui/favicon.svg
$(BUILD)/webui_assets.h: $(WEBUI_FILES) | $(BUILD)/tests
	{ for f in $(WEBUI_FILES); do printf 'static const unsigned char webui_%s[] = {' "$$(basename $$f | tr . _)"; \
	  $(call embed_bytes,$$f); printf '0};\n'; done; } > $@.tmp && mv $@.tmp $@
$(BUILD)/webui.o: $(BUILD)/webui_assets.h

$(BUILD)/tests:
	mkdir -p $(BUILD)/tests

# the GGUF reader and ggml quantisation kernels have their own headers; -O3 vectorises the block dequantisation
# (elementwise: the same roundings, the same bits; 2-3x faster for the types without a dedicated kernel)
$(BUILD)/ggml_quants.o: CFLAGS += -O3

# the CLI and `glm4v serve` (server.c and its chat page webui.c: only this binary links the HTTP server)
$(GLM4V_BIN): $(BUILD)/glm4v.o $(BUILD)/server.o $(BUILD)/webui.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(COMPARE_BIN): $(BUILD)/compare.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# ---------------------------------------------------------------------------- libglm4v, make install

# libglm4v.so (glm4v_api.h, glm4v_api.c) and its pkg-config file: the objects again, position-independent and with
# hidden visibility, in build/pic/ (the programs' objects stay as they are)
PIC_BUILD = $(BUILD)/pic
PIC_OBJS  = $(LIB_SRCS:%.c=$(PIC_BUILD)/%.o) $(PIC_BUILD)/glm4v_api.o
LIB_SO    = $(BUILD)/libglm4v.so
PREFIX   ?= /usr/local
PYTHON   ?= python3

lib: $(LIB_SO) $(BUILD)/glm4v.pc

$(PIC_BUILD)/%.o: %.c | $(BUILD)/builtin_templates.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden $(DEPFLAGS) -c -o $@ $<
$(PIC_BUILD)/ggml_quants.o: CFLAGS += -O3

$(LIB_SO): $(PIC_OBJS)
	$(CC) $(CFLAGS) -shared -Wl,-soname,libglm4v.so -o $@ $^ $(LDLIBS)

# the pkg-config file for PREFIX (rewritten when PREFIX changes)
$(BUILD)/glm4v.pc: FORCE | $(BUILD)/tests
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: glm4v\nDescription: %s\nVersion: %s\nLibs: -L$${libdir} -lglm4v\nLibs.private: %s -fopenmp\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' 'GLM-4.5V / GLM-4.6V / GLM-4.1V on the CPU: forward, generate, score (glm4v_api.h)' \
	  "$$(sed -n 's/^#define GLM4V_VERSION "\(.*\)"/\1/p' base.h)" '$(LDLIBS)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

# the programs (the chat page is inside glm4v: webui.c), the library with its header and pkg-config file, and the
# Python package (python/: pip, no deps)
install: all lib
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(GLM4V_BIN) $(COMPARE_BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 glm4v_api.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/glm4v.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation --no-warn-script-location \
	  --prefix $(DESTDIR)$(PREFIX) ./python

$(BUILD)/tests/%: tests/%.c $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

# deterministic synthetic checkpoints (standalone: C11 + cJSON), e.g. GLM-4.5V dimensions for test-realdims / bench
tools/synth_ckpt: tools/synth_ckpt.c
	$(CC) $(CFLAGS) -o $@ $< -lcjson -lm

# GLM-4.5V-dimension check against HF (tests/golden/README.md): builds the ~7 GB checkpoint into build/realdims once
# (its sha256 must equal the one HF was run on), runs the CLI on the recorded prompt/image, compares the dump
REALDIMS_DIR    = $(BUILD)/realdims
REALDIMS_GOLDEN = tests/golden/realdims/realdims.image
test-realdims: tools/synth_ckpt glm4v glm4v-compare
	@want=$$(sed -n 's/.*"model_sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' $(REALDIMS_GOLDEN).json); \
	stamp=$(REALDIMS_DIR)/model.safetensors.sha256; \
	if [ -z "$$want" ]; then echo "no model_sha256 in $(REALDIMS_GOLDEN).json"; exit 1; fi; \
	if [ -f "$$stamp" ] && [ "$$stamp" -nt $(REALDIMS_DIR)/model.safetensors ] && [ "$$(cat $$stamp)" = "$$want" ]; then \
	  exit 0; fi; \
	have=$$(sha256sum $(REALDIMS_DIR)/model.safetensors 2>/dev/null | cut -d' ' -f1); \
	if [ "$$have" != "$$want" ]; then \
	  echo "writing $(REALDIMS_DIR) (about 7 GB)"; rm -rf $(REALDIMS_DIR); \
	  ./tools/synth_ckpt --preset realdims --seed 1 --out $(REALDIMS_DIR) || exit 1; \
	  have=$$(sha256sum $(REALDIMS_DIR)/model.safetensors | cut -d' ' -f1); \
	fi; \
	if [ "$$have" != "$$want" ]; then echo "synth_ckpt wrote sha256 $$have, HF ran on $$want"; exit 1; fi; \
	echo "$$have" > "$$stamp"
	./glm4v -m $(REALDIMS_DIR) --raw -p "$$(cat $(REALDIMS_GOLDEN).prompt.txt)" -i tests/data/images/photo_450x300.png \
	  -n 4 --dump $(BUILD)/realdims.dump.safetensors
	./glm4v-compare $(BUILD)/realdims.dump.safetensors $(REALDIMS_GOLDEN).safetensors

# install the Debian packages that are missing (uses sudo when not root)
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: deps
	$(MAKE) all
	./glm4v -m weights/tiny-glm4v-moe -p "Describe this picture." -i tests/data/images/synth_200x150.png -n 16
	@echo "(a tiny checkpoint with random weights: the words are gibberish, the numbers are HF's; README.md shows how to run GLM-4.5V)"

# the library the Python binding's test loads (test-asan leaves it out: an ASan .so cannot be loaded by python3)
TEST_LIB = lib
test: all tools/synth_ckpt $(TEST_LIB) $(TEST_BINS)
	@GLM4V=./$(GLM4V_BIN) GLM4V_COMPARE=./$(COMPARE_BIN) bash tests/run_tests.sh $(TEST_BINS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) glm4v glm4v-compare tools/synth_ckpt

# ---------------------------------------------------------------------------- robustness (README.md, "Robustness")

# packages the checks below need beyond DEB_PKGS (gcc's own ASan/UBSan runtime comes with gcc)
DEB_PKGS_CHECK = clang-14 libclang-rt-14-dev valgrind
deps-check:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS_CHECK)"

# the whole suite with AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer, in build-asan/
ASAN_BUILD = build-asan
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test-asan:
	@ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) GLM4V_BIN=$(ASAN_BUILD)/glm4v \
	  COMPARE_BIN=$(ASAN_BUILD)/glm4v-compare SANFLAGS="$(ASAN_FLAGS)" TEST_LIB= test

# a full generation (image prompt, --dump) under valgrind with the portable kernels: no leak, no invalid access
VALGRIND = valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible \
           --errors-for-leak-kinds=definite,indirect,possible --suppressions=tests/valgrind.supp --num-callers=30
VG_ENV   = GLM4V_PORTABLE=1 OMP_NUM_THREADS=2 OPENBLAS_CORETYPE=HASWELL GLM4V_NO_REEXEC=1
test-valgrind: all
	@rm -f $(BUILD)/valgrind.dump.safetensors
	$(VG_ENV) $(VALGRIND) ./glm4v -m weights/tiny-glm4v-moe -p "Describe this picture." \
	  -i tests/data/images/synth_97x61.png -n 8 -q --dump $(BUILD)/valgrind.dump.safetensors
	$(VG_ENV) $(VALGRIND) ./glm4v -m weights/tiny-glm4v-dense -p "What happens?" \
	  --video tests/data/video_frames -n 8 -q
	$(VALGRIND) ./glm4v-compare $(BUILD)/valgrind.dump.safetensors $(BUILD)/valgrind.dump.safetensors >/dev/null
	@echo "valgrind: no errors, no leaks"

# libFuzzer targets (clang, ASan + UBSan) for every parser of outside data: fuzz/fuzz_*.c. `make fuzz` runs each for
# FUZZ_SECONDS from the seeds in fuzz/corpus/<target>/ (+ tests/data/regress/<target>/); new inputs go to
# build/fuzz/corpus/<target>/, crashes to build/fuzz/crashes/ (copy them to tests/data/regress/<target>/).
FUZZ_CC      = clang-14
FUZZ_SECONDS = 30
FUZZ_TARGETS = safetensors config tokenizer tokenize image prompt compare jinja chat_output gguf gguf_model pdf openai json \
               score quant
FUZZ_DIR     = $(BUILD)/fuzz
FUZZ_CFLAGS  = -std=c11 -O1 -g -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas -D_GNU_SOURCE \
               -I/usr/include/stb -I. -I$(BUILD) $(ASAN_FLAGS) -fsanitize-recover=float-cast-overflow -DJINJA_FUZZ_LIMITS
FUZZ_LIB     = util.c safetensors.c checkpoint.c quant_config.c tokenizer.c image.c preprocess.c video.c prompt.c dump.c jinja.c json.c \
               chat_template.c chat_output.c gguf.c ggml_quants.c gguf_map.c gguf_model.c boxes.c pdf.c
FUZZ_OBJS    = $(FUZZ_LIB:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS    = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/%.o: %.c | $(BUILD)/builtin_templates.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) -lpcre2-8 -lcjson -ljpeg -lz -lm

$(FUZZ_DIR)/fuzz_compare: compare.c

# request bodies: openai.c (and messages.c's base64) on top of the common objects (their media calls meet weak
# stand-ins in the target)
$(FUZZ_DIR)/fuzz_openai: fuzz/fuzz_openai.c $(FUZZ_OBJS) $(FUZZ_DIR)/obj/openai.o $(FUZZ_DIR)/obj/messages.o
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(FUZZ_DIR)/obj/openai.o $(FUZZ_DIR)/obj/messages.o \
	  -lpcre2-8 -lcjson -ljpeg -lz -lm

# score cases (scorer.c, messages.c: instrumented) run through the whole engine; the model and kernels are the
# build's own gcc objects (ops.c's CPU feature tests need gcc), uninstrumented, with gcc's OpenMP
FUZZ_GCC_OBJS = $(addprefix $(BUILD)/,weights.o ops.o ops_bf16.o ops_amx.o ops_amx_emu.o quant.o quant_fp8x.o quant_i8x.o quantize.o vision.o moe.o model.o sampler.o engine.o)
$(FUZZ_DIR)/fuzz_score: fuzz/fuzz_score.c $(FUZZ_OBJS) $(FUZZ_DIR)/obj/scorer.o $(FUZZ_DIR)/obj/messages.o $(FUZZ_GCC_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(FUZZ_DIR)/obj/scorer.o \
	  $(FUZZ_DIR)/obj/messages.o $(FUZZ_GCC_OBJS) -lpcre2-8 -lcjson -ljpeg -lz -lm -lgomp

# quantised checkpoints: quant.c instrumented (-ffp-contract=off as the build compiles it: the kernels' bits are the
# build's), over the build's gcc ops.o / ops_bf16.o / ops_amx*.o (dot_f32, the CPU feature tests) like fuzz_score
$(FUZZ_DIR)/obj/quant.o $(FUZZ_DIR)/obj/quant_fp8x.o $(FUZZ_DIR)/obj/quant_i8x.o: FUZZ_CFLAGS += -ffp-contract=off
FUZZ_QUANT_GCC_OBJS = $(addprefix $(BUILD)/,ops.o ops_bf16.o ops_amx.o ops_amx_emu.o)
$(FUZZ_DIR)/fuzz_quant: fuzz/fuzz_quant.c $(FUZZ_OBJS) $(FUZZ_DIR)/obj/quant.o $(FUZZ_DIR)/obj/quant_fp8x.o $(FUZZ_DIR)/obj/quant_i8x.o $(FUZZ_QUANT_GCC_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(FUZZ_DIR)/obj/quant.o \
	  $(FUZZ_DIR)/obj/quant_fp8x.o $(FUZZ_DIR)/obj/quant_i8x.o $(FUZZ_QUANT_GCC_OBJS) -lpcre2-8 -lcjson -ljpeg -lz -lm -lgomp

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh $(FUZZ_TARGETS)

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d $(PIC_BUILD)/*.d $(FUZZ_DIR)/obj/*.d)

# make bench / make bench-hf
include bench/bench.mk

# glm4v.c - build, demo and tests.  `make run` installs what is missing, builds and runs the demo; `make test`.
CC      ?= gcc
# -ffp-contract=off: no silent a*b+c fusion, so the numbers do not depend on the compiler's mood
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -Wall -Wextra -Wno-unused-parameter -fopenmp -ffp-contract=off -fno-fast-math \
           -D_GNU_SOURCE -I/usr/include/stb -I/usr/include/openblas -I.
LDLIBS  += -lopenblas -lpcre2-8 -lcjson -lz -lm
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
CFLAGS  += -DGLM4V_GIT_COMMIT=\"$(GIT_COMMIT)\"

# Debian packages the build and the tests need
DEB_PKGS = gcc make libopenblas-dev libstb-dev libpcre2-dev libcjson-dev zlib1g-dev

LIB_SRCS = util.c safetensors.c checkpoint.c ops.c tokenizer.c preprocess.c vision.c moe.c model.c dump.c prompt.c boxes.c
BUILD    = build
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
HDRS     = glm4v.h

TEST_SRCS = $(wildcard tests/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test clean test-realdims

all: glm4v glm4v-compare

$(BUILD)/%.o: %.c $(HDRS) | $(BUILD)/tests
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests:
	mkdir -p $(BUILD)/tests

glm4v: $(BUILD)/glm4v.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

glm4v-compare: $(BUILD)/compare.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test_util.h $(LIB_OBJS) $(HDRS) | $(BUILD)/tests
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

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

test: all $(TEST_BINS)
	@bash tests/run_tests.sh $(TEST_BINS)

clean:
	rm -rf $(BUILD) glm4v glm4v-compare tools/synth_ckpt

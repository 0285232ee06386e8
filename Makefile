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

LIB_SRCS = util.c safetensors.c checkpoint.c ops.c tokenizer.c preprocess.c vision.c moe.c model.c dump.c
BUILD    = build
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/%.o)
HDRS     = glm4v.h

TEST_SRCS = $(wildcard tests/test_*.c)
TEST_BINS = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test clean

all: glm4v glm4v-compare

$(BUILD)/%.o: %.c $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)/tests

glm4v: $(BUILD)/glm4v.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

glm4v-compare: $(BUILD)/compare.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test_util.h $(LIB_OBJS) $(HDRS) | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

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
	rm -rf $(BUILD) glm4v glm4v-compare

# SPDX-License-Identifier: MIT
# bench/bench.mk - `make bench` and `make bench-hf` (included by the Makefile). bench/bench.sh writes the synthetic
# GLM-4.5V-dimension checkpoint into build/bench once (~7 GB, regenerated when tools/synth_ckpt.c changes) and prints
# one key=value per line; README.md ("Performance") explains the numbers.
.PHONY: bench bench-hf bench-full
BENCH_BIN = $(BUILD)/glm4v-bench

$(BENCH_BIN): bench/bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ bench/bench.c $(LIB_OBJS) $(LDLIBS) -lopenblas

BENCH_QUANT_BIN = $(BUILD)/glm4v-bench-quant

$(BENCH_QUANT_BIN): bench/bench_quant.c $(LIB_OBJS)
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ bench/bench_quant.c $(LIB_OBJS) $(LDLIBS)

bench: $(BENCH_BIN) $(BENCH_QUANT_BIN) $(GLM4V_BIN) tools/synth_ckpt
	@BENCH_BIN=$(BENCH_BIN) BENCH_QUANT_BIN=$(BENCH_QUANT_BIN) bash bench/bench.sh

# the same run plus a 32768-token prefill (long_prefill_*: time, peak RSS, KV cache; BENCH_LONG_COMPUTE=bf16)
bench-full: $(BENCH_BIN) $(BENCH_QUANT_BIN) $(GLM4V_BIN) tools/synth_ckpt
	@BENCH_BIN=$(BENCH_BIN) BENCH_QUANT_BIN=$(BENCH_QUANT_BIN) bash bench/bench.sh --full

# the same run plus HuggingFace transformers (PyTorch, CPU) on the same checkpoint: hf_* and the speed-ups
bench-hf: $(BENCH_BIN) tools/synth_ckpt
	@BENCH_BIN=$(BENCH_BIN) bash bench/bench.sh --hf

# linear() alone at prefill / vision shapes, as GFLOP/s and a ratio to the FMA peak of the same run (no checkpoint)
.PHONY: bench-linear
$(BUILD)/linear-bench: bench/linear_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ bench/linear_bench.c $(LIB_OBJS) $(LDLIBS)

bench-linear: $(BUILD)/linear-bench
	$(BUILD)/linear-bench

# the decode Linear alone (one activation row) over bf16 / FP8 / int8 / int4 weights streamed from memory, as GB/s of
# weights read and the ratio to bf16 on the same shape (no checkpoint)
.PHONY: bench-quant-kernels
$(BUILD)/quant-kernel-bench: bench/quant_kernel_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ bench/quant_kernel_bench.c $(LIB_OBJS) $(LDLIBS)

bench-quant-kernels: $(BUILD)/quant-kernel-bench
	$(BUILD)/quant-kernel-bench

# the decode Linear alone on ggml block weights (Q8_0, Q4_K, Q5_0, Q6_K, Q5_K, Q4_0) against bf16, as GB/s and ratios
.PHONY: bench-gguf-decode
$(BUILD)/gguf-decode-bench: bench/gguf_decode_bench.c $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ bench/gguf_decode_bench.c $(LIB_OBJS) $(LDLIBS)

bench-gguf-decode: $(BUILD)/gguf-decode-bench
	$(BUILD)/gguf-decode-bench

# ggml_quants.c of commit OLD against this tree's, in one process (bench/gguf_ab.c): OLD's object with its exported
# symbols renamed A_*; e.g. `make bench-gguf-ab OLD=HEAD~3 AB_ARGS="10 64 all 1"` (GLM4V_ISA=avx2 for the AVX2 kernels)
.PHONY: bench-gguf-ab
OLD ?= HEAD
AB_ARGS ?= 10 64 all 1
bench-gguf-ab: bench/gguf_ab.c $(LIB_OBJS)
	@mkdir -p $(BUILD)/ab
	git show $(OLD):ggml_quants.c > $(BUILD)/ab/ggml_quants_old.c
	$(CC) $(CFLAGS) -c -o $(BUILD)/ab/old.o -x c $(BUILD)/ab/ggml_quants_old.c
	objcopy $$(nm --defined-only -g $(BUILD)/ab/old.o | awk '{printf " --redefine-sym %s=A_%s", $$3, $$3}') \
	  $(BUILD)/ab/old.o $(BUILD)/ab/old_renamed.o
	$(CC) $(CFLAGS) -o $(BUILD)/ab/gguf-ab bench/gguf_ab.c $(LIB_OBJS) $(BUILD)/ab/old_renamed.o $(LDLIBS)
	OMP_NUM_THREADS=1 $(BUILD)/ab/gguf-ab $(AB_ARGS)

// SPDX-License-Identifier: MIT
// ops_amx_emu.c - ops_amx.c's kernel built over the software model of the tile instructions (amx_block_emu): the AMX
// chain on any CPU, for tests (tests/test_amx.c, and GLM4V_AMX=emulate: whole runs through it, tests/cli_amx.sh).
#define GLM4V_AMX_EMULATE
#include "ops_amx.c"

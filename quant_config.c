// SPDX-License-Identifier: MIT
// quant_config.c - placeholder (filled in below)
#include "base.h"

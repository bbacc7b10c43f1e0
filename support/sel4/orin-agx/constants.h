/*
 * Copyright 2026, the sel4-vmm authors
 *
 * SPDX-License-Identifier: BSD-2-Clause
 *
 * Install as libsel4/sel4_plat_include/orinagx/sel4/plat/api/constants.h (seL4 16.0.0).
 */

#pragma once

#include <sel4/config.h>

/* Tegra234 has 12 Cortex-A78AE cores; the platform builds as Cortex-A76 (config.cmake says
 * why). The A78AE, like the A76, has 6 breakpoints and 4 watchpoints. */
#if defined(CONFIG_ARM_CORTEX_A76)
#include <sel4/arch/constants_cortex_a76.h>
#else
#error "orinagx: unsupported core"
#endif

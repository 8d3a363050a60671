// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Wrap-safe sequence comparison (RFC 1982 serial numbers, 32 bits). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "redplane/proto.h"

Test(seq, plain_order)
{
	cr_assert(rp_seq_after(2, 1));
	cr_assert(!rp_seq_after(1, 2));
	cr_assert(!rp_seq_after(5, 5));
	cr_assert(rp_seq_before(1, 2));
	cr_assert(!rp_seq_before(7, 7));
}

Test(seq, across_the_wrap)
{
	cr_assert(rp_seq_after(0, 0xffffffffu));
	cr_assert(rp_seq_after(5, 0xfffffff0u));
	cr_assert(rp_seq_before(0xfffffff0u, 5));
	cr_assert(!rp_seq_after(0xffffffffu, 0));
}

Test(seq, half_the_space_is_the_horizon)
{
	/* up to 2^31 - 1 ahead is after; 2^31 ahead is neither */
	cr_assert(rp_seq_after(0x7fffffffu, 0));
	cr_assert(!rp_seq_after(0x80000000u, 0));
	cr_assert(!rp_seq_before(0x80000000u, 0));
	cr_assert(rp_seq_before(0x80000001u, 0));
}

Test(seq, a_walk_through_the_wrap_always_moves_forward)
{
	uint32_t s = 0xffffff00u;

	for (int i = 0; i < 512; i++, s++) {
		cr_assert(rp_seq_after(s + 1, s), "%u after %u", s + 1, s);
		cr_assert(rp_seq_before(s, s + 1));
		cr_assert(rp_seq_after(s + 1000, s));
	}
}

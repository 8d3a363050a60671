/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What the libFuzzer targets share (fuzz/fuzz_*.c, docs/TESTING.md). */
#ifndef __RP_FUZZ_H
#define __RP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken invariant is a crash: libFuzzer keeps the input that made it. */
#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "invariant broken: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);					\
			abort();					\
		}							\
	} while (0)

/*
 * Inputs that are sequences of datagrams or frames: records of a 3-byte
 * header (a control byte, then a big-endian length) and that many bytes,
 * the last one cut to what is left.  fuzz/corpus_gen.c writes them.
 */
/* The chain fuzz_chain.c's replica is in, which fuzz/corpus_gen.c's frames name. */
#define FUZZ_CHAIN_HASH		0x5eed5eed5eed5eedull
#define FUZZ_PRED_ID		1	/* the predecessor's id and incarnation */
#define FUZZ_PRED_INC		11
#define FUZZ_SWITCH_ID		7	/* fuzz_agent.c's switch */
#define FUZZ_STORE_FIRST_EPOCH	7	/* fuzz_store.c's store run: a switch's first epoch */

struct fuzz_rec {
	uint8_t ctl;
	const uint8_t *p;
	size_t len;
};

static inline int fuzz_next(const uint8_t **data, size_t *size, struct fuzz_rec *r)
{
	size_t len;

	if (*size < 3)
		return 0;
	r->ctl = (*data)[0];
	len = (size_t)(*data)[1] << 8 | (*data)[2];
	*data += 3;
	*size -= 3;
	if (len > *size)
		len = *size;
	r->p = *data;
	r->len = len;
	*data += len;
	*size -= len;
	return 1;
}

#endif /* __RP_FUZZ_H */

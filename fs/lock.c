/* The one-word mutex of jfs_lock_t: an uncontended lock or unlock is one atomic instruction; a
 * contended one sleeps in futex(2). The word says whether an unlock must wake anyone. */
#include <linux/futex.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jfs.h"

enum { FREE = 0, HELD = 1, WAITED = 2 };

void jfs_lock(jfs_lock_t *l)
{
	uint32_t c = FREE;

	if (__atomic_compare_exchange_n(&l->word, &c, HELD, false, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED))
		return;
	/* from now on an unlock must wake: mark the word, and sleep while someone holds it */
	if (c != WAITED)
		c = __atomic_exchange_n(&l->word, WAITED, __ATOMIC_ACQUIRE);
	while (c != FREE) {
		syscall(SYS_futex, &l->word, FUTEX_WAIT_PRIVATE, WAITED, NULL, NULL, 0);
		c = __atomic_exchange_n(&l->word, WAITED, __ATOMIC_ACQUIRE);
	}
}

bool jfs_trylock(jfs_lock_t *l)
{
	uint32_t c = FREE;

	return __atomic_compare_exchange_n(&l->word, &c, HELD, false, __ATOMIC_ACQUIRE,
					   __ATOMIC_RELAXED);
}

void jfs_unlock(jfs_lock_t *l)
{
	if (__atomic_exchange_n(&l->word, FREE, __ATOMIC_RELEASE) == WAITED)
		syscall(SYS_futex, &l->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

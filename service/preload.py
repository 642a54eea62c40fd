"""What the CPU pool's fork server reads once for all its workers (``cpupool``).

The fork server imports this module before it forks any worker, so the shipped labeller's
parameters and the tokenizer's table (~0.1 s and ~0.4 s of CPU to read) are in every worker
it forks, instead of being read again by each worker while a batch's first model calls are
going out and the cores are busiest: a batch's pool spent 0.5-0.9 s less CPU over 120 articles.
A pool for another labeller file still reads that file in each worker (``_init_worker``).
"""

import os

READ_BY: int | None = None  # the process that read them; a worker with another pid inherited them

try:
    from service import pipeline
    from service.chunk import count_tokens

    pipeline.cached_labeller(None)
    count_tokens("")
    READ_BY = os.getpid()
except Exception:  # noqa: BLE001 - the fork server must start: each worker then reads them itself
    pass

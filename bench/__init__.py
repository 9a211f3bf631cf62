"""`make bench`: runbus measured side by side with the physical limits of the same machine.

`python -m bench.run [--quick]` measures, in one run: the client limits (pipelined XADD,
XREADGROUP + XACK), sustained end-to-end throughput with SQLite and PostgreSQL (the real
services, one process per stage, as `runbus run <service>` starts them), publish-to-history and
publish-to-coach latency at fixed rates, the dead-letter path, read cost as the history grows,
and memory under a backlog. Results go to ``bench/results/latest.json`` and ``latest.md``.
"""

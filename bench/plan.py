"""How big and how long each measurement is: the full run (`make bench`) and the quick one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of one benchmark run."""

    quick: bool
    limit_events: int
    limit_rounds: int
    warmup_s: float
    sustained_s: float
    latency_s: float
    latency_half: bool
    latency_half_postgres: bool
    dead_letter_s: float
    history_sizes: tuple[int, ...]
    history_reads: int
    history_10m: bool
    dead_letters: int
    cli_rounds: int
    backlog: int | None
    backlog_s: float
    budget_s: float
    scale_s: float
    node_partitions: tuple[int, ...]
    cluster_partitions: tuple[int, ...]
    ui_rows: int
    """History rows (PostgreSQL) under the dashboard's pages."""
    ui_dead_letters: int
    ui_requests: int
    """Timed server requests per page (after a first one)."""
    ui_loads: int
    """Timed browser loads per page."""
    ui_dashboards: int
    """Live dashboards open during the second end-to-end run."""
    ui_window_s: float
    """Measured window of each end-to-end run of the dashboard part."""
    ui_idle_s: float
    """Each idle window (Redis commands with no load)."""
    ceiling_rows: int
    """Ready rows inserted into each backend's real history schema (the store's ceiling)."""
    ceiling_variant_rows: int
    """Rows inserted into each throwaway schema variant (the ceiling's diagnostics)."""
    reads_s: float = 10.0
    """Each HTTP load of the api_reads part (wrk's -d)."""
    reads_rounds: int = 3
    """Rounds of every api_reads load (the figures are their medians)."""

    @property
    def cluster_estimate_s(self) -> float:
        """About how long the cluster part takes: each sustained run, with start-up and drain."""
        runs = len(self.node_partitions) + len(self.cluster_partitions)
        return 10.0 + runs * (self.warmup_s + self.scale_s + 10.0)

    @property
    def ui_estimate_s(self) -> float:
        """About how long the dashboard part takes: seeding, pages, three end-to-end runs."""
        seed = self.ui_rows / 60_000 + self.ui_dead_letters / 20_000
        runs = 3 * (self.warmup_s + self.ui_window_s + 10.0)
        return 40.0 + seed + 6 * (self.ui_requests * 0.3 + self.ui_loads) + runs

    @classmethod
    def full(cls, *, with_10m: bool = True) -> Plan:
        """`make bench`: within ten minutes (10M rows only when the estimate fits the budget)."""
        return cls(
            quick=False,
            limit_events=100_000,
            limit_rounds=3,
            warmup_s=5.0,
            sustained_s=30.0,
            latency_s=15.0,
            latency_half=True,
            latency_half_postgres=True,
            dead_letter_s=20.0,
            history_sizes=(100_000, 1_000_000),
            history_reads=300,
            history_10m=with_10m,
            dead_letters=100_000,
            cli_rounds=3,
            backlog=1_000_000,
            backlog_s=40.0,
            budget_s=600.0,
            scale_s=15.0,
            node_partitions=(1, 4),
            cluster_partitions=(3, 6, 12),
            ui_rows=1_000_000,
            ui_dead_letters=100_000,
            ui_requests=20,
            ui_loads=5,
            ui_dashboards=50,
            ui_window_s=15.0,
            ui_idle_s=5.0,
            ceiling_rows=300_000,
            ceiling_variant_rows=100_000,
            reads_s=10.0,
            reads_rounds=3,
        )

    @classmethod
    def small(cls) -> Plan:
        """`make bench-quick`: about two minutes (a third of it the cluster part); no 1M parts."""
        return cls(
            quick=True,
            limit_events=20_000,
            limit_rounds=1,
            warmup_s=1.0,
            sustained_s=4.0,
            latency_s=3.0,
            latency_half=False,
            latency_half_postgres=False,
            dead_letter_s=3.0,
            history_sizes=(50_000,),
            history_reads=60,
            history_10m=False,
            dead_letters=10_000,
            cli_rounds=1,
            backlog=None,
            backlog_s=0.0,
            budget_s=60.0,
            scale_s=4.0,
            node_partitions=(1, 4),
            cluster_partitions=(3, 12),
            ui_rows=100_000,
            ui_dead_letters=10_000,
            ui_requests=8,
            ui_loads=3,
            ui_dashboards=50,
            ui_window_s=4.0,
            ui_idle_s=2.0,
            ceiling_rows=50_000,
            ceiling_variant_rows=20_000,
            reads_s=3.0,
            reads_rounds=1,
        )

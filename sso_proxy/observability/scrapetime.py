"""Metric families counted in plain Python and handed to Prometheus when it scrapes.

For what is bumped on every request: a prometheus_client ``Counter`` / ``Histogram`` / ``Gauge``
child takes a lock and a few calls per update, these a dict or list update. The exposition is the
same. They are written on the event loop's thread (``LabelCounts`` also by the access log's writer
thread, on labels of its own), read by the scrape.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString


class LabelCounts:
    """A counter family: ``_total`` and ``_created`` per label set."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.counts: dict[tuple[str, ...], int] = {}
        self.created: dict[tuple[str, ...], float] = {}
        REGISTRY.register(self)

    def inc(self, labels: tuple[str, ...], amount: int = 1) -> None:
        counts = self.counts
        if labels in counts:
            counts[labels] += amount
        else:
            self.created[labels] = time.time()
            counts[labels] = amount

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in list(self.counts.items()):
            family.add_metric(labels, value, created=self.created[labels])
        yield family


class _Series:
    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size  # per bucket, not cumulative; the last one is +Inf
        self.total = 0.0


class LabelHistogram:
    """A histogram family with one label: ``observe`` is a bisect and two additions."""

    def __init__(self, name: str, documentation: str, labelname: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelname = labelname
        self.bounds = tuple(sorted(buckets))
        self.series: dict[str, _Series] = {}
        REGISTRY.register(self)

    def observe(self, label: str, value: float) -> None:
        series = self.series.get(label)
        if series is None:
            series = self.series[label] = _Series(len(self.bounds) + 1)
        # bisect_left: the first bound >= value, the bucket "le" that value belongs to
        series.counts[bisect.bisect_left(self.bounds, value)] += 1
        series.total += value

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=[self.labelname])

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.labelname])
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        for label, series in list(self.series.items()):
            cumulative = itertools.accumulate(list(series.counts))
            family.add_metric([label], list(zip(bounds, cumulative, strict=True)), series.total)
        yield family


class Level:
    """A gauge without labels: ``value`` is read when Prometheus scrapes."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0
        REGISTRY.register(self)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, value=self.value)

"""Performance: metrics against truth and against the classic tracks, the benchmark, the report.

- `hepgan.perf.metrics`: matching, efficiency (categories, intervals, paired counts), the
  TrackML score, resolutions, agreement, AUC;
- `hepgan.perf.bench`: ``hepgan bench``, the protocol (with `timing`, `sizes`, `seeds`,
  `machine`, `headline`);
- `hepgan.perf.report`: ``hepgan report``, the HTML page;
- `hepgan.perf.samples`: perturbed samples (noise hits) for benchmarks and tests.
"""
